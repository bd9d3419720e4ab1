"""Pictures of digits: a canvas's ink, stroke thinning, drawings -> model inputs, image files,
the training-time augmentation, and arrays -> pictures a browser shows. Pure functions of
arrays; nothing here knows a model or a run."""
