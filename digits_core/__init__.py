"""digits_core: the Digit Lab engine — data, three model families, training jobs,
evaluation, drawings, saved runs and a CLI. It never imports streamlit, and importing
it is cheap (torch and scikit-learn load on first use)."""

__version__ = "0.1.0"
