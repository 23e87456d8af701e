import pytest

from mmbench.data.readers import DataFormatError, read_delimited

NAMES = ["user", "item", "rating", "timestamp"]


def write(tmp_path, text):
    p = tmp_path / "u.data"
    p.write_text(text)
    return p


def test_reads_numeric_columns_and_skips_blank_lines(tmp_path):
    p = write(tmp_path, "1\t2\t3\t100\n\n4\t5\t1\t200\n")
    df = read_delimited(p, NAMES, "\t", numeric=tuple(NAMES))
    assert df["user"].tolist() == [1, 4]
    assert df["timestamp"].tolist() == [100, 200]


@pytest.mark.parametrize(
    "text, line, what",
    [
        ("1\t2\t3\t100\n1\t2\t3\n", "line 2", "missing field 'timestamp'"),
        ("1\t2\t3\t100\n1\t2\t3\t100\t9\n", "line 2", "Expected 4 fields"),
        ("1\t2\t3\t100\n1\t2\t3\t100\n1\tx\t3\t100\n", "line 3", "'item' = 'x' is not a number"),
    ],
)
def test_malformed_line_names_file_and_line(tmp_path, text, line, what):
    p = write(tmp_path, text)
    with pytest.raises(DataFormatError) as e:
        read_delimited(p, NAMES, "\t", numeric=tuple(NAMES))
    msg = str(e.value)
    assert str(p) in msg and line in msg and what in msg


def test_header_mismatch(tmp_path):
    p = tmp_path / "t.tsv"
    p.write_text("user\titem\n1\t2\n")
    with pytest.raises(DataFormatError, match="line 1: header"):
        read_delimited(p, ["user", "item", "rating"], "\t", header=True, required=("user",))
