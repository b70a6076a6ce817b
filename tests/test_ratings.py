"""Rating validation: every good shape and every bad case names file, line and field."""

import math

import pytest

from speechbrain_alld.ratings import DIMENSIONS, RatingError, RatingRecord, ReadReport

FULL = {"mos": "3.25", "noi": "2.5", "col": "4.0", "dis": "4.75", "loud": "3.5",
        "mos_std": "0.9", "noi_std": "1.1", "col_std": "0.4", "dis_std": "0.0",
        "loud_std": "0.7", "votes": "5"}


def test_full_row_parses_every_field():
    rec = RatingRecord.from_mapping(FULL)
    assert rec.mos == 3.25 and rec.noi == 2.5 and rec.col == 4.0
    assert rec.dis == 4.75 and rec.loud == 3.5
    assert rec.noi_std == 1.1 and rec.dis_std == 0.0 and rec.votes == 5
    assert rec.dimensions() == {"noi": 2.5, "col": 4.0, "dis": 4.75, "loud": 3.5}


@pytest.mark.parametrize("empty", ["", "  ", "nan", "NaN", "NA", None])
def test_mos_only_row_leaves_dimensions_missing(empty):
    row = {"mos": "2.1", **{d: empty for d in DIMENSIONS}, "votes": empty}
    rec = RatingRecord.from_mapping(row)
    assert rec.mos == 2.1
    assert rec.dimensions() == {}
    assert rec.votes is None


def test_prefixed_keys_and_json_numbers():
    rec = RatingRecord.from_mapping({"A_mos": 1.8, "A_noi": 3.2, "B_mos": 4.0}, prefix="A_")
    assert (rec.mos, rec.noi, rec.col) == (1.8, 3.2, None)
    assert rec.to_dict(prefix="A_", include_missing=False) == {"A_mos": 1.8, "A_noi": 3.2}


@pytest.mark.parametrize(
    "field,value,reason",
    [
        ("mos", "", "missing"),
        ("mos", "nan", "missing"),
        ("mos", "abc", "not a number"),
        ("mos", "inf", "finite"),
        ("mos", "0.5", "outside"),
        ("mos", "5.2", "outside"),
        ("noi", "-inf", "finite"),
        ("col", "0.99", "outside"),
        ("dis", "x3", "not a number"),
        ("loud", "6", "outside"),
        ("noi_std", "-0.1", "standard deviation"),
        ("mos_std", "inf", "standard deviation"),
        ("votes", "0", "vote count"),
        ("votes", "2.5", "vote count"),
        ("votes", "many", "not a number"),
    ],
)
def test_bad_value_error_names_file_line_and_field(field, value, reason):
    row = dict(FULL, **{field: value})
    with pytest.raises(RatingError) as info:
        RatingRecord.from_mapping(row, source="corpus.csv", line=17)
    err = info.value
    assert err.field == field and err.line == 17 and err.source == "corpus.csv"
    message = str(err)
    assert message.startswith("corpus.csv:17: field '" + field + "'")
    assert reason in message


def test_bad_prefixed_field_keeps_the_prefix_in_the_error():
    with pytest.raises(RatingError) as info:
        RatingRecord.from_mapping({"B_mos": "3", "B_col": "9"}, prefix="B_", source="x.jsonl",
                                  line=3)
    assert info.value.field == "B_col"
    assert "x.jsonl:3: field 'B_col'" in str(info.value)


def test_tolerance_accepts_and_clips_small_excursions():
    with pytest.raises(RatingError):
        RatingRecord.from_mapping({"mos": "5.04"})
    rec = RatingRecord.from_mapping({"mos": "5.04", "noi": "0.97"}, tolerance=0.05)
    assert rec.mos == 5.0 and rec.noi == 1.0
    with pytest.raises(RatingError, match="tolerance 0.05"):
        RatingRecord.from_mapping({"mos": "5.06"}, tolerance=0.05)


def test_direct_construction_is_validated():
    with pytest.raises(RatingError):
        RatingRecord(mos=math.nan)
    with pytest.raises(RatingError):
        RatingRecord(mos=3.0, loud=0.0)
    with pytest.raises(RatingError):
        RatingRecord(mos=3.0, votes=True)
    assert RatingRecord(mos=1.0, noi=5.0).noi == 5.0


def test_report_counts_and_summarises_skips():
    report = ReadReport(n_read=3, n_kept=1)
    report.skip("a.csv", 2, "mos", "outside the rating scale")
    report.skip("a.csv", 4, None, "audio missing")
    assert report.n_skipped == 2
    text = report.summary()
    assert "read 3, kept 1, skipped 2" in text
    assert "a.csv:2: field 'mos' outside" in text and "a.csv:4: audio missing" in text
    other = ReadReport(n_read=2, n_kept=2)
    assert report.merge(other).n_read == 5
