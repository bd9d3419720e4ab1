"""Training-curve figures read at a projector."""

from dashboard.charts import accuracy_figure
from digits_core.jobs import History


def test_epoch_end_diamonds_shrink_when_there_are_many():
    def size(epochs: int) -> float:
        h = History(epochs=list(range(1, epochs + 1)), test_acc=[0.9] * epochs, steps_per_epoch=10)
        return accuracy_figure(h).data[-1].marker.size

    assert size(5) == 11 and size(40) == 5 and size(300) == 4
