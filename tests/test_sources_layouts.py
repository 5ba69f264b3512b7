"""The publishers' real file layouts, written exactly as issue 9 describes them, read with no options.

NAPS as the journal's .xls (and its padded ``;`` CSV export), IAPS with its preamble and
twice-rated pictures, EmoMadrid's xlsx and its 2025 cp1252 CSV export, SMID's unnamed id
column, IED's headerless files; and a file without a header is never read as if it had one.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from conftest import write_image
from picaffect.data.build import SourceSpec, build
from picaffect.data.sources import RatingFileError, read_source

# --- NAPS -----------------------------------------------------------------------------------------

NAPS_SHEET = "Supplementary Table  "
NAPS_HEADER = (["ID", "Category", "Nr", "V/H", "Description"] + ["M", "SD"] * 9
               + ["Width", "Height", "Luminance", "Contrast", "JPEG_size80", "LABL", "LABA", "LABB", "Entropy", "",
                  "Acronym", "Description"])
LEGEND = [("M", "Mean"), ("SD", "Standard deviation"), ("V", "vertical"), ("H", "horizontal"),
          ("Av/Ap", "avoidance-approach"), ("LABL", "L* of L*a*b*"), ("LABA", "a* of L*a*b*"),
          ("LABB", "b* of L*a*b*"), ("JPEG_size80", "JPEG size at quality 80")]
CATEGORIES = ["Animals", "Faces", "Landscapes", "Objects", "People"]


def _naps_rows(n: int = 11) -> list[list]:
    """n pictures whose nine M/SD pairs all differ, so a wrong column shows."""
    rows = []
    for k in range(n):
        category = CATEGORIES[k % 5]
        orientation = "h" if k % 2 == 0 else "v"
        ident = f"{category}_{k + 1:03d}_{orientation}"
        pairs = []
        for block in range(9):  # Women V, Av/Ap, A; Men V, Av/Ap, A; All V, Av/Ap, A
            pairs += [round(1.5 + 0.7 * block + 0.05 * k, 2), round(0.5 + 0.1 * block, 2)]
        technical = [1600.0, 1200.0, 110.5 + k, 50.25, 250000.0 + k, 45.5, 1.25, -3.5, 7.75]
        rows.append([ident, category, float(k + 1), orientation, f"picture {k}"] + pairs + technical)
    return rows


def _all_block(row: list) -> tuple[float, float, float, float]:
    """(valence M, valence SD, arousal M, arousal SD) of the All group: 0-based columns 17, 18, 21, 22."""
    return row[17], row[18], row[21], row[22]


def _naps_grid(rows: list[list]) -> list[list]:
    """The whole sheet as cells: banners, header, data, and the legend beside the first 9 rows."""
    width = len(NAPS_HEADER)
    banner = [""] * width
    banner[5], banner[11], banner[17] = "Women", "Men", "All"
    dims = [""] * width
    for block in range(3):
        for j, name in enumerate(("Valence", "Av/Ap", "Arousal")):
            dims[5 + 6 * block + 2 * j] = name
    grid = [banner, dims, list(NAPS_HEADER)]
    for i, values in enumerate(rows):
        cells = list(values) + [""] + (list(LEGEND[i]) if i < len(LEGEND) else ["", ""])
        grid.append(cells)
    return grid


def _naps_xls(root: Path, name: str = "13428_2013_379_MOESM1_ESM.xls") -> list[list]:
    xlwt = pytest.importorskip("xlwt")
    rows = _naps_rows()
    book = xlwt.Workbook()
    sheet = book.add_sheet(NAPS_SHEET)
    for r, cells in enumerate(_naps_grid(rows)):
        for c, value in enumerate(cells):
            if value != "":
                sheet.write(r, c, value)
    root.mkdir(parents=True, exist_ok=True)
    book.save(str(root / name))
    for values in rows[:-1]:  # the last picture is missing
        ext = ".JPG" if values[0].startswith("Faces") else ".jpg"
        write_image(root / "images" / f"{values[0]}{ext}")
    return rows


def test_naps_published_xls_reads_the_all_columns(tmp_path):
    rows = _naps_xls(tmp_path)
    xlrd = pytest.importorskip("xlrd")
    assert xlrd.open_workbook(str(tmp_path / "13428_2013_379_MOESM1_ESM.xls")).sheet_names() == [NAPS_SHEET]
    records = read_source("naps", tmp_path)
    assert [r.id for r in records] == [r[0] for r in rows]
    for record, values in zip(records, rows):
        assert (record.valence_raw, record.valence_sd, record.arousal_raw, record.arousal_sd) == _all_block(values)
        assert record.valence_n is None and record.arousal_n is None
        assert record.group == values[1]
    first = records[0]
    assert first.row == "13428_2013_379_MOESM1_ESM.xls row 4"
    assert first.path == tmp_path / "images" / "Animals_001_h.jpg" and first.problem is None
    assert records[1].path.name == "Faces_002_v.JPG" and records[1].problem is None
    assert records[-1].problem.startswith("no image file for id 'Animals_011_h'")
    # the legend beside the first rows is not data; Nr (a float) and the rest are kept as they are
    assert first.extra["nr"] == 1.0 and first.extra["v_h"] == "h" and first.extra["entropy"] == 7.75
    assert not any("acronym" in k for r in records for k in r.extra)
    assert set(first.extra) == set(records[-1].extra)
    # the Women valence (column 5) and Nr are what the old preset misread: not taken
    assert first.valence_raw != rows[0][5] and first.valence_raw != rows[0][2]


def test_naps_distribution_name_or_only_spreadsheet(tmp_path):
    _naps_xls(tmp_path / "a", "Valence, arousal and approach-avoidance ratings (Marchewka et al., 2014).xls")
    _naps_xls(tmp_path / "b", "naps ratings copy.xls")
    assert len(read_source("naps", tmp_path / "a")) == 11
    assert len(read_source("naps", tmp_path / "b")) == 11
    _naps_xls(tmp_path / "b", "another.xls")
    with pytest.raises(RatingFileError, match="another.xls, naps ratings copy.xls"):
        read_source("naps", tmp_path / "b")


def test_naps_padded_semicolon_csv_export(tmp_path):
    rows = _naps_rows()

    def text(value) -> str:
        return f"{value:g}".replace(".", ",") if isinstance(value, float) else str(value)

    lines = [";".join(text(v) for v in cells) + ";" * 300 for cells in _naps_grid(rows)]
    tmp_path.mkdir(exist_ok=True)
    (tmp_path / "NAPS.csv").write_bytes(("\r\n".join(lines) + "\r\n").encode("cp1252"))
    records = read_source("naps", tmp_path)
    assert len(records) == 11
    for record, values in zip(records, rows):
        assert (record.valence_raw, record.valence_sd, record.arousal_raw, record.arousal_sd) == _all_block(values)
    assert records[0].row == "NAPS.csv line 4" and records[0].extra["nr"] == 1.0
    assert not any(k.startswith("column_") for k in records[0].extra)  # the padding is not kept


def test_naps_other_layout_stops_with_a_message(tmp_path):
    rows = _naps_rows()
    grid = _naps_grid(rows)
    grid[0][11], grid[0][17] = "All", "Men"  # another layout: the 7th M column under "Men"
    lines = [";".join(str(v) for v in cells) for cells in grid]
    (tmp_path / "NAPS.csv").write_text("\n".join(lines) + "\n")
    with pytest.raises(RatingFileError, match=r"under 'Men' / 'Valence', not 'All' / 'Valence'"):
        read_source("naps", tmp_path)


# --- IAPS -----------------------------------------------------------------------------------------

IAPS_HEADER = "desc\tIAPS\tvalmn\tvalsd\taromn\tarosd\tdom1mn\tdom1sd\tdom2mn\tdom2sd\tset"


def _iaps(root: Path) -> Path:
    preamble = ["Lang, Bradley & Cuthbert (2008)", "International Affective Picture System",
                "Technical Report A-8", "All Subjects", "Ratings for sets 1-20", ""]
    data = ["Puppies\t1710\t8.34\t1.12\t5.41\t2.34\t6.8\t2.0\t.\t.\t1",
            "Snake\t1050\t3.46\t1.50\t6.87\t1.68\t.\t.\t3.9\t2.1\t2",
            "Woman\t2352.2\t2.06\t1.32\t6.59\t2.1\t.\t.\t.\t.\t13",
            "Puppies\t1710\t7.90\t1.30\t5.10\t2.20\t.\t.\t6.1\t2.2\t9",
            "Man\t2345.1\t7.5\t1.6\t.\t.\t.\t.\t.\t.\t11"]
    text = "\r\n".join(line + "\\" for line in preamble + [IAPS_HEADER] + data) + "\r\n"
    root.mkdir(parents=True, exist_ok=True)
    (root / "AllSubjects_1-20.txt").write_text(text)
    for name in ("1710.jpg", "1050.JPG", "2352.2.jpg", "2345.1.jpg"):
        write_image(root / "images" / name)
    return root


def test_iaps_preamble_decimal_ids_missing_dots(tmp_path):
    records = read_source("iaps", _iaps(tmp_path))
    assert [r.id for r in records] == ["1710", "1050", "2352.2", "1710", "2345.1"]
    puppies, snake, woman, again, man = records
    assert puppies.row == "AllSubjects_1-20.txt line 8" and puppies.problem is None
    assert (puppies.valence_raw, puppies.valence_sd, puppies.arousal_raw, puppies.arousal_sd) == (8.34, 1.12, 5.41, 2.34)
    assert puppies.extra == {"desc": "Puppies", "dom1mn": 6.8, "dom1sd": 2.0, "dom2mn": None, "dom2sd": None,
                             "set": 1.0}
    assert snake.path.name == "1050.JPG" and woman.path.name == "2352.2.jpg" and woman.problem is None
    assert man.problem == "missing arousal rating"


def test_iaps_twice_rated_picture_enters_once_and_the_report_says_which(tmp_path):
    root = _iaps(tmp_path / "iaps")
    report = build(tmp_path / "out", [SourceSpec("iaps", root, "iaps")], size=16, progress=False, plots=False)
    assert report["read"] == 5 and report["kept"] == 3 and report["skipped"] == 2
    (dup,) = [r for r in report["skipped_rows"] if r["id"] == "1710"]
    assert dup["row"] == "AllSubjects_1-20.txt line 11"
    assert dup["reason"] == ("duplicate id '1710': rated again here (valence 7.9, arousal 5.1); kept the first "
                             "usable rating, at AllSubjects_1-20.txt line 8 (valence 8.34, arousal 5.41), so the "
                             "picture enters once")
    assert report["sources"]["iaps"]["skip_reasons"] == {"duplicate id '...'": 1, "missing arousal rating": 1}


def test_iaps_spreadsheet_variant_without_preamble(tmp_path):
    openpyxl = pytest.importorskip("openpyxl")
    book = openpyxl.Workbook()
    book.active.append(IAPS_HEADER.split("\t"))
    book.active.append(["Puppies", 1710, 8.34, 1.12, 5.41, 2.34, 6.8, 2, None, None, 1])
    book.active.append(["Woman", 2352.2, 2.06, 1.32, 6.59, 2.1, None, None, None, None, 13])
    book.save(tmp_path / "iaps.xlsx")
    write_image(tmp_path / "images" / "1710.jpg")
    write_image(tmp_path / "images" / "2352.2.jpg")
    records = read_source("iaps", tmp_path / "iaps.xlsx")
    assert [r.id for r in records] == ["1710", "2352.2"] and all(r.problem is None for r in records)


# --- EmoMadrid ------------------------------------------------------------------------------------

def test_emomadrid_xlsx_banner_stripped_codes_mixed_case_and_empty(tmp_path):
    openpyxl = pytest.importorskip("openpyxl")
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["EmoMadrid: affective picture database (Carretié et al., 2019)"])
    sheet.append(["EM CODE", "Thumbnail", "Description", "Mean Valence", "SD Valence", "Mean Arousal", "SD Arousal"])
    sheet.append([" EM0083 ", None, "beach", 2, 0.4, -2, 0.5])
    sheet.append(["EM0084", "Empty", "withdrawn", 0.5, 0.4, 0.5, 0.5])
    sheet.append(["EM0085\t", None, "crash", -1, 0.3, 1, 0.2])
    book.save(tmp_path / "EMindex.xlsx")
    write_image(tmp_path / "images" / "EM0083.JPG")
    write_image(tmp_path / "images" / "em0085.Jpg")
    beach, empty, crash = read_source("emomadrid", tmp_path)
    assert (beach.id, beach.path.name, beach.problem) == ("EM0083", "EM0083.JPG", None)
    assert (beach.valence, beach.arousal) == (9.0, 1.0)  # both on -2..2
    assert (crash.id, crash.path.name, crash.problem) == ("EM0085", "em0085.Jpg", None)
    assert (crash.valence, crash.arousal) == (3.0, 7.0)
    assert empty.problem == "no picture (Thumbnail is Empty)" and empty.path is None


def test_emomadrid_2025_csv_export(tmp_path):
    text = ("EmoMadrid - índice de imágenes 2025;;;;;\r\n"
            "EM  CODE;Thumbnail;Descripción;Valence   mean;Valence SD;Arousal    mean\r\n"
            "EM0001 ;;Niño;1,5;0,4;-0,5\r\n"
            "EM0002;Empty;;0;0;0\r\n"
            "EM0003;;Calle;-2;0,3;2\r\n")
    (tmp_path / "EMindex.csv").write_bytes(text.encode("cp1252"))
    write_image(tmp_path / "images" / "EM0001.jpg")
    write_image(tmp_path / "images" / "EM0003.JPEG")
    nino, empty, street = read_source("emomadrid", tmp_path)
    assert (nino.id, nino.valence_raw, nino.arousal_raw) == ("EM0001", 1.5, -0.5)
    assert nino.extra["descripción"] == "Niño" and nino.row == "EMindex.csv line 3"
    assert empty.problem == "no picture (Thumbnail is Empty)"
    assert street.path.name == "EM0003.JPEG" and (street.valence, street.arousal) == (1.0, 9.0)


# --- SMID, IED -----------------------------------------------------------------------------------

def test_smid_unnamed_id_na_and_stems(tmp_path):
    (tmp_path / "SMID_norms.csv").write_text(
        '"","valence_mean","valence_sd","valence_n","arousal_mean","arousal_sd","arousal_n"\n'
        '"1_h",3,0.5,20,1,0.4,21\n"2_m",NA,NA,0,5,0.4,21\n"3_l",5,0.5,20,3,0.4,21\n')
    write_image(tmp_path / "img" / "1_h.GIF", mode="P", color=3, fmt="GIF")
    write_image(tmp_path / "img" / "2_m.png")
    write_image(tmp_path / "img" / "3_l.jpeg")
    one, two, three = read_source("smid", tmp_path)
    assert one.path.name == "1_h.GIF" and three.path.name == "3_l.jpeg"
    assert one.problem is None and three.problem is None and (three.valence, three.arousal) == (9.0, 5.0)
    assert two.problem == "missing valence rating"


def test_ied_headerless_files_line_k_is_picture_k(tmp_path):
    (tmp_path / "valence_avg_10766_v2.txt").write_text("2.5\n7\n")
    (tmp_path / "arousal_avg_10766_v2.txt").write_text("6\n3.25\n")
    write_image(tmp_path / "images" / "1.jpg")
    write_image(tmp_path / "images" / "2.jpg")
    one, two = read_source("cgna", tmp_path)
    assert (one.id, one.valence_raw, one.arousal_raw) == ("1", 2.5, 6.0)
    assert (two.id, two.path.name, two.arousal_raw) == ("2", "2.jpg", 3.25)


def test_ied_file_with_a_header_stops(tmp_path):
    (tmp_path / "valence_avg_10766_v2.txt").write_text("valence\n2.5\n7\n")
    (tmp_path / "arousal_avg_10766_v2.txt").write_text("arousal\n6\n3\n")
    with pytest.raises(RatingFileError, match="line 1 is 'valence', not a number: these files have no header"):
        read_source("cgna", tmp_path)


# --- a file without a header ----------------------------------------------------------------------

def test_headerless_file_read_by_position_stops_instead_of_losing_its_first_row(tmp_path):
    (tmp_path / "ground_truth.txt").write_text("joy/1.jpg\t7\t3\nfear/2.jpg\t2\t8\n")
    with pytest.raises(RatingFileError, match=r"line 1 looks like data, not a header \(ratings 7, 3\)"):
        read_source("emotion6", tmp_path)


def test_headerless_generic_csv_with_header_row_0(tmp_path):
    write_image(tmp_path / "a.png")
    (tmp_path / "r.csv").write_text("a.png,7,3\nb.png,2,8\n")
    with pytest.raises(RatingFileError, match="looks like data"):
        read_source("csv", tmp_path / "r.csv", options={"path": "1", "valence": "2", "arousal": "3"})
    a, b = read_source("csv", tmp_path / "r.csv", options={"path": "1", "valence": "2", "arousal": "3",
                                                             "header_row": "0"})
    assert (a.id, a.valence_raw, a.row) == ("a.png", 7.0, "r.csv line 1") and b.arousal_raw == 8.0


def test_header_only_file_stops(tmp_path):
    (tmp_path / "OASIS.csv").write_text(",Theme,Category,Source,Valence_mean,Valence_SD,Valence_N,Arousal_mean\n")
    with pytest.raises(RatingFileError, match=r"OASIS.csv: has a header \(OASIS.csv line 1\) but no data rows"):
        read_source("oasis", tmp_path)


def test_named_columns_in_a_file_without_header_say_so(tmp_path):
    (tmp_path / "OASIS.csv").write_text("I1,Acorns 1,Object,Pixabay,4.68,0.9,102,2.1,1.6,101\n"
                                        "I2,Acorns 2,Object,Pixabay,4.5,0.8,102,2.5,1.4,101\n")
    with pytest.raises(RatingFileError, match="no column 'Theme'.*OASIS.csv line 1 holds numbers, as data does: "
                                              "does the file lack its header line"):
        read_source("oasis", tmp_path)
