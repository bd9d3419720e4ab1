"""The datasets: the bundled 8x8 digits and MNIST (loaded, fetched, cached), the strict IDX
reader, splits and normalisation."""
