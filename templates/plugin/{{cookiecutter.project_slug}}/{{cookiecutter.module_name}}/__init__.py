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
{%- endif %}
