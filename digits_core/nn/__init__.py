"""The networks: the `Classifier` interface every family shares, the from-scratch NumPy MLP,
the PyTorch MLP and CNN, the NumPy replay of a small torch network, and the model-shape
arithmetic (sizes and parameter counts without building a model). Imports nothing from
the run store, training or serving."""
