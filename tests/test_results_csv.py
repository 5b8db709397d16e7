"""descbench.core.results: the column-wise CSV writer writes what the csv module writes, to the byte."""

from __future__ import annotations

import numpy as np

from descbench.core.results import csv_columns_text, csv_field_text, csv_text, fixed_text, int_text


def test_columns_text_equals_the_csv_module():
    names = ["plain", "with, comma", 'a "quoted" word', "line\nbreak", "", "naïve"]
    values = [0.0, -0.0000004, 0.1234565, 2.5e-7, 1e20, float("nan"), -3.9999996, 0.30000000000000004]
    ints = [0, 7, -3, 12, 999_999, 5, 1, 2]
    rows = [[ints[i], names[i % len(names)], f"{values[i]:.6f}"] for i in range(len(values))]
    columns = [int_text(ints), csv_field_text([names[i % len(names)] for i in range(len(values))]), fixed_text(values)]
    assert csv_columns_text(["i", "name", "value"], columns) == csv_text(["i", "name", "value"], rows)


def test_fixed_text_is_pythons_formatting_on_random_and_tie_values():
    rng = np.random.default_rng(0)
    values = np.concatenate(
        [
            rng.random(20_000),
            -rng.random(1000) * 1e-6,  # rounds to -0.000000
            np.arange(0, 1, 1e-6)[:2000] + 5e-7,  # ties at the sixth digit
            rng.normal(0, 1e4, 1000),
        ]
    )
    assert fixed_text(values).tolist() == [f"{float(v):.6f}" for v in values]


def test_an_empty_column_set_is_the_header_alone():
    assert csv_columns_text(["a", "b"], [np.array([], dtype=np.str_), np.array([], dtype=np.str_)]) == "a,b\r\n"
