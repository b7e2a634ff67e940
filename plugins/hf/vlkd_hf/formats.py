"""The export formats of this family (registered in ``vlkd_hf/__init__``): which towers offer
them is each tower's ``exports_as(format)`` (the ExportsAs ability)."""
ST_FORMAT = "sentence-transformers"  # vlkd_hf.export_st
HF_FORMAT = "hf"                     # vlkd_hf.export_hf
