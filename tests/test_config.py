"""The form's text and table input -> config values (parse_widths, conv_rows/conv_blocks),
and conv geometry (conv_shapes)."""

import math

import pytest

from digits_core.config import ConvBlock, TrainConfig, conv_blocks, conv_rows, parse_widths
from digits_core.errors import ConfigError
from digits_core.nn.shapes import conv_shapes


@pytest.mark.parametrize("text, widths", [
    ("128, 64", [128, 64]), ("128;64", [128, 64]), (" 7 ", [7]), ("", []), ("32,,16,", [32, 16]),
])
def test_parse_widths_reads_what_people_type(text, widths):
    assert parse_widths(text) == widths


@pytest.mark.parametrize("text", ["12, abc", "0", "-5", "3.5", "1e3"])
def test_parse_widths_refuses_anything_but_positive_whole_numbers(text):
    with pytest.raises(ConfigError, match="positive whole numbers"):
        parse_widths(text)


def test_conv_rows_and_blocks_round_trip():
    blocks = [ConvBlock(16, 5, 2, True, 2, 0.1), ConvBlock(32, 3, 0, False, 1, 0.0)]
    assert conv_blocks(conv_rows(blocks)) == blocks


def test_conv_blocks_fill_empty_cells_with_the_defaults_and_cast_types():
    rows = [{"channels": 8.0, "kernel": None, "padding": math.nan, "batchnorm": None, "pool": 2,
             "dropout": None}]
    [block] = conv_blocks(rows)
    default = ConvBlock()
    assert block == ConvBlock(8, default.kernel, default.padding, default.batchnorm, 2, default.dropout)
    assert isinstance(block.channels, int)


def test_conv_shapes_follow_each_convolution_and_pooling():
    blocks = [ConvBlock(32, 5, 0, True, 2), ConvBlock(48, 3, 0, True, 2)]
    assert conv_shapes(blocks, (28, 28)) == [(32, 24, 24), (32, 12, 12), (48, 10, 10), (48, 5, 5)]
    with pytest.raises(ConfigError, match="nothing"):
        conv_shapes([ConvBlock(8, 3, 0, False, 2)] * 3, (8, 8))


def test_every_number_out_of_range_is_named_at_once():
    """A form shows them together (the Train page): one ConfigError, every problem in it."""
    tc = TrainConfig(epochs=0, batch_size=0, l2=5.0)
    with pytest.raises(ConfigError) as got:
        tc.validate()
    assert [p.split(" must")[0] for p in got.value.problems] == ["epochs", "batch size", "L2"]
    assert str(got.value) == "; ".join(got.value.problems)


def test_the_model_and_training_problems_come_together():
    from digits_core.config import Experiment, ModelConfig

    e = Experiment(model=ModelConfig(dropout=1.5), train=TrainConfig(epochs=0, seed=-1))
    with pytest.raises(ConfigError) as got:
        e.validate()
    assert [p.split(" must")[0] for p in got.value.problems] == ["dropout", "seed", "epochs"]
