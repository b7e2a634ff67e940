"""vlkd plugin '{{ cookiecutter.plugin_name }}': registers one {{ cookiecutter.kind }}."""
from vlkd_core import hookimpl

{% if cookiecutter.kind == 'loss' -%}
@hookimpl
def vlkd_register_losses(register):
    # A "module:attr" string keeps `vlkd plugins list` fast: torch is imported only on use.
    register("{{ cookiecutter.component_name }}", "{{ cookiecutter.module_name }}.component:CosineDistillLoss")
{%- elif cookiecutter.kind == 'backbone' -%}
@hookimpl
def vlkd_register_backbones(register):
    # Backbones are families addressed as "{{ cookiecutter.component_name }}:<model>".
    register("{{ cookiecutter.component_name }}", "{{ cookiecutter.module_name }}.component:build_backbone",
             models=["tiny"], example={"model": "tiny"})
{%- elif cookiecutter.kind == 'head' -%}
@hookimpl
def vlkd_register_heads(register):
    register("{{ cookiecutter.component_name }}", "{{ cookiecutter.module_name }}.component:ResidualHead")
{%- elif cookiecutter.kind == 'dataset' -%}
@hookimpl
def vlkd_register_datasets(register):
    register("{{ cookiecutter.component_name }}", "{{ cookiecutter.module_name }}.component:ColourSwatches")
{%- elif cookiecutter.kind == 'evaluator' -%}
@hookimpl
def vlkd_register_evaluators(register):
    register("{{ cookiecutter.component_name }}", "{{ cookiecutter.module_name }}.component:PairCosine")
{%- elif cookiecutter.kind == 'recipe' -%}
@hookimpl
def vlkd_register_recipes(register):
    # `vlkd train --recipe {{ cookiecutter.component_name }}`: the values you tuned for one job
    register("{{ cookiecutter.component_name }}", "{{ cookiecutter.module_name }}.component:recipe")
{%- elif cookiecutter.kind == 'optimizer' -%}
@hookimpl
def vlkd_register_optimizers(register):
    # `vlkd train --optimizer {{ cookiecutter.component_name }}`; per_parameter=True: a step of one
    # parameter reads only its own gradient and state, so --optimizer-in-backward may use it
    register("{{ cookiecutter.component_name }}", "{{ cookiecutter.module_name }}.component:SignMomentum",
             per_parameter=True)
{%- elif cookiecutter.kind == 'scheduler' -%}
@hookimpl
def vlkd_register_schedulers(register):
    # `vlkd train --scheduler {{ cookiecutter.component_name }}`
    register("{{ cookiecutter.component_name }}", "{{ cookiecutter.module_name }}.component:inverse_sqrt")
{%- elif cookiecutter.kind == 'export-format' -%}
@hookimpl
def vlkd_register_export_formats(register):
    # `vlkd export RUN --format {{ cookiecutter.component_name }} --out DIR`; the description is what
    # `vlkd components list export_formats` shows without importing the format
    register("{{ cookiecutter.component_name }}", "{{ cookiecutter.module_name }}.component:NumpyWeights",
             description="weights.npz: every weight of the run as a numpy array")
{%- endif %}
