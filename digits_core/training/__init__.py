"""Training: the event generator, one learner per backend, the live measurements, the
centre-line cache augmentation needs, and the background job that runs them."""
