"""Looking at a trained model: scores and the confusion matrix, 2-D maps of its last hidden
layer, and reading one drawing with it."""
