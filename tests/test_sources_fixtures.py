"""Every source reader on small files written in its publisher's layout, quirks included.

The real GAPED, IAPS, SMID, NAPS, EmoMadrid, IED (cgna) and DIRTI files are not in
../shared/data, so each test writes a few rows the way SPEC.md describes them.
"""
from __future__ import annotations

import math
from pathlib import Path

import pytest

from conftest import write_image
from picaffect.data.sources import RatingFileError, dirti, read_source
from picaffect.data.sources.tables import (ImageFolder, clean_id, find_column, guess_sep, read_text,
                                           to_float)


def _write(path: Path, text: str, newline: str = "\n", encoding: str = "utf-8", bom: bool = False) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = text.replace("\n", newline).encode(encoding)
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + data)
    return path


def _by_id(records):
    return {r.id: r for r in records}


# --- OASIS, Emotion6, BASS quirks -----------------------------------------------------------------

OASIS_HEADER = ",Theme,Category,Source,Valence_mean,Valence_SD,Valence_N,Arousal_mean,Arousal_SD,Arousal_N\n"


def _oasis(root: Path, header: str = OASIS_HEADER) -> Path:
    for theme in ("Acorns 1", "Acorns 2", "War 2"):
        write_image(root / "images" / f"{theme}.jpg")
    _write(root / "OASIS.csv", header
           + "I1,Acorns 1,Object,Pixabay,4,0.9,102,7,1.6,101\n"
           + "I2,Acorns 2,Object,Pixabay,1,0.8,102,2.5,1.4,101\n"
           + "I3,War 2 ,Scenery,Pixabay,,1.5,101,4.5,1.8,103\n", newline="\r")
    return root


def test_oasis_cr_endings_trailing_space_and_groups(tmp_path):
    rows = read_source("oasis", _oasis(tmp_path))
    assert [r.id for r in rows] == ["Acorns 1", "Acorns 2", "War 2"]
    assert [r.row for r in rows] == ["OASIS.csv line 2", "OASIS.csv line 3", "OASIS.csv line 4"]
    acorns, _, war = rows
    assert acorns.group == "Acorns" and war.group == "War"
    assert acorns.valence == 5.0 and acorns.arousal == 9.0  # 4 and 7 on 1..7
    assert rows[1].valence == 1.0 and rows[1].arousal == pytest.approx(3.0)
    assert acorns.valence_sd == 0.9 and acorns.arousal_n == 101
    assert acorns.extra == {"column_1": "I1", "category": "Object", "source": "Pixabay"}
    assert war.path == tmp_path / "images" / "War 2.jpg" and war.path.is_file()
    assert war.problem == "missing valence rating"


def test_oasis_accepts_the_rating_file_and_a_bom(tmp_path):
    _oasis(tmp_path)
    text = (tmp_path / "OASIS.csv").read_bytes()
    (tmp_path / "OASIS.csv").write_bytes(b"\xef\xbb\xbf" + text)
    rows = read_source("oasis", tmp_path / "OASIS.csv")
    assert len(rows) == 3 and rows[0].path == tmp_path / "images" / "Acorns 1.jpg"


def test_oasis_renamed_columns_and_scale_through_options(tmp_path):
    header = ",Motif,Category,Source,V,V_sd,V_n,A,A_sd,A_n\n"
    _oasis(tmp_path, header)
    (tmp_path / "OASIS.csv").rename(tmp_path / "mine.csv")
    options = {"ratings": "mine.csv", "theme": "Motif", "valence": "V", "arousal": "A", "valence_sd": "V_sd",
               "arousal_sd": "A_sd", "valence_n": "V_n", "arousal_n": "A_n", "scale": "0,8"}
    rows = read_source("oasis", tmp_path, options=options)
    assert rows[0].id == "Acorns 1" and rows[0].valence_n == 102
    assert rows[0].valence == 5.0  # 4 on 0..8


def test_unknown_option_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="unknown option 'valance'"):
        read_source("oasis", _oasis(tmp_path), options={"valance": "x"})


def test_bad_scale_option_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="scale"):
        read_source("oasis", _oasis(tmp_path), options={"scale": "7"})


def test_missing_rating_file_names_the_file(tmp_path):
    (tmp_path / "images").mkdir()
    with pytest.raises(RatingFileError, match="OASIS.csv") as info:
        read_source("oasis", tmp_path)
    assert info.value.path == tmp_path / "OASIS.csv"


def test_missing_column_names_it_and_the_columns_there(tmp_path):
    _oasis(tmp_path, OASIS_HEADER.replace("Arousal_mean", "Arousal_avg"))
    with pytest.raises(RatingFileError) as info:
        read_source("oasis", tmp_path)
    message = str(info.value)
    assert "OASIS.csv" in message and "'Arousal_mean'" in message and "option arousal" in message
    assert "'Arousal_avg'" in message and "'Theme'" in message


def test_emotion6_positions_paths_and_probabilities(tmp_path):
    header = "[image_filename]\t[valence]\t[arousal]\t" + "\t".join(
        f"[prob. {e}]" for e in ("anger", "disgust", "fear", "joy", "sadness", "surprise", "neutral")) + "\n"
    write_image(tmp_path / "images" / "joy" / "1.jpg")
    _write(tmp_path / "ground_truth.txt", header
           + "joy/1.jpg\t9\t1\t0\t0\t0\t1\t0\t0\t0\n"
           + "fear/2.jpg\t3\tNA\t0\t0\t0.5\t0\t0\t0.5\t0\n", newline="\r\n")
    rows = read_source("emotion6", tmp_path)
    assert [r.id for r in rows] == ["joy/1.jpg", "fear/2.jpg"]
    assert rows[0].path == tmp_path / "images" / "joy" / "1.jpg"
    assert (rows[0].valence, rows[0].arousal) == (9.0, 1.0) and rows[0].group is None
    assert rows[0].extra["prob_joy"] == 1.0 and len(rows[0].extra) == 7
    assert rows[1].problem == "missing arousal rating"
    by_name = read_source("emotion6", tmp_path, options={"valence": "[arousal]", "arousal": "[valence]"})
    assert (by_name[0].valence_raw, by_name[0].arousal_raw) == (1.0, 9.0)


def test_bass_bom_crlf_quoted_keywords(tmp_path):
    _write(tmp_path / "BASS_data.csv",
           "file_name,val_mean_us,aro_mean_us,val_sd_us,aro_sd_us,val_n_us,aro_n_us,val_mean_ch,keywords,source\n"
           + 'cat.png,5,1,1.1,1.2,90,91,6.5 ,"pet, fur, cute",Pixabay\n'
           + 'dog.png,9,x,1,1,90,91,7,"dog",Pixabay\n', newline="\r\n", bom=True)
    rows = read_source("bass", tmp_path)
    cat, dog = rows
    assert cat.id == "cat.png" and cat.path == tmp_path / "images" / "cat.png"
    assert (cat.valence, cat.arousal) == (5.0, 1.0) and cat.valence_n == 90
    assert cat.extra == {"val_mean_ch": 6.5, "keywords": "pet, fur, cute", "source": "Pixabay"}
    assert dog.problem == "arousal 'x' is not a number"


# --- GAPED ----------------------------------------------------------------------------------------

def _gaped(root: Path) -> Path:
    for category in ("A", "H", "N", "P", "Sn", "Sp"):
        extra = "\tInternal norms\tExternal norms" if category in ("A", "H") else ""
        norms = "\t20\t30" if category in ("A", "H") else ""
        rows = f"\tValence\tArousal{extra}\n{category}001.jpg\t75\t25{norms}\n{category}002.jpg\t0\t100{norms}\n"
        _write(root / f"{category}.txt", rows, newline="\r\n")
        _write(root / f"{category}_with SD.txt", "garbage that must not be read\n")
        write_image(root / category / f"{category}001.bmp", fmt="BMP")
        (root / category / "Thumbs.db").write_bytes(b"\x00thumbs")
    return root


def test_gaped_joins_jpg_names_on_bmp_stems(tmp_path):
    rows = read_source("gaped", _gaped(tmp_path))
    assert len(rows) == 12
    records = _by_id(rows)
    assert list(records)[:4] == ["A001", "A002", "H001", "H002"]
    a1 = records["A001"]
    assert a1.path == tmp_path / "A" / "A001.bmp" and a1.problem is None
    assert a1.group == "A" and records["Sp001"].group == "Sp"
    assert (a1.valence, a1.arousal) == (7.0, 3.0)  # 75 and 25 on 0..100
    assert (records["A002"].valence, records["A002"].arousal) == (1.0, 9.0)
    assert a1.extra == {"internal_norms": 20.0, "external_norms": 30.0}
    assert records["N001"].extra == {}
    assert "no image file for id 'A002'" in records["A002"].problem  # Thumbs.db is no match
    assert a1.row == "A.txt line 2"


def test_gaped_categories_option_and_missing_category_file(tmp_path):
    _gaped(tmp_path)
    assert [r.id for r in read_source("gaped", tmp_path, options={"categories": "N,Sn"})] == [
        "N001", "N002", "Sn001", "Sn002"]
    (tmp_path / "P.txt").unlink()
    with pytest.raises(RatingFileError, match="P.txt"):
        read_source("gaped", tmp_path)


# --- IAPS -----------------------------------------------------------------------------------------

def test_iaps_preamble_missing_dots_backslashes_and_repeats(tmp_path):
    text = ("IAPS Technical Report\\\n"
            "All subjects, 1-20\\\n"
            "\\\n"
            "desc\tIAPS\tvalmn\tvalsd\taromn\tarosd\\\n"
            "Puppies\t1710\t8.34\t1.12\t5.41\t2.34\\\n"
            "Snake\t1050.0\t3.46\t1.5\t6.87\t1.68\\\n"
            "Man\t2345.1\t7.5\t1.6\t.\t.\\\n"
            "Puppies again\t1710\t8\t1\t5\t2\\\n")
    _write(tmp_path / "AllSubjects_1-20.txt", text, newline="\r\n")
    for name in ("1710.jpg", "1050.JPG"):
        write_image(tmp_path / "images" / name)
    rows = read_source("iaps", tmp_path)
    assert [r.id for r in rows] == ["1710", "1050", "2345.1", "1710"]
    puppies, snake, man, again = rows
    assert puppies.problem is None and puppies.row == "AllSubjects_1-20.txt line 5"
    assert puppies.valence_raw == 8.34 and puppies.arousal_sd == 2.34
    assert puppies.extra == {"desc": "Puppies"}
    assert snake.path == tmp_path / "images" / "1050.JPG" and snake.problem is None
    assert man.problem.startswith("no image file for id '2345.1'")
    assert again.problem.startswith("duplicate id '1710'") and "line 5" in again.problem


def test_iaps_missing_rating_is_a_problem_row(tmp_path):
    _write(tmp_path / "AllSubjects_1-20.txt", "desc\tIAPS\tvalmn\tvalsd\taromn\tarosd\nMan\t2345.1\t7.5\t1.6\t.\t.\n")
    write_image(tmp_path / "images" / "2345.1.jpg")
    (man,) = read_source("iaps", tmp_path)
    assert man.path == tmp_path / "images" / "2345.1.jpg"
    assert man.problem == "missing arousal rating" and man.arousal_sd is None


# --- SMID -----------------------------------------------------------------------------------------

def test_smid_first_unnamed_column_and_mixed_formats(tmp_path):
    _write(tmp_path / "SMID_norms.csv",
           '"","valence_mean","valence_sd","valence_n","arousal_mean","arousal_sd","arousal_n","moral_mean"\n'
           '"1_h",3,0.5,20,1,0.4,21,2.5\n'
           '"2_m",5,0.5,20,5,0.4,21,1\n'
           '"3_l",1,0.5,20,2,0.4,21,4\n'
           '"4_x",2,0.5,20,6,0.4,21,4\n')
    write_image(tmp_path / "img" / "1_h.gif", mode="P", color=3, fmt="GIF")
    write_image(tmp_path / "img" / "2_m.png")
    write_image(tmp_path / "img" / "3_l.jpg")
    rows = _by_id(read_source("smid", tmp_path))
    assert list(rows) == ["1_h", "2_m", "3_l", "4_x"]
    assert rows["1_h"].path.name == "1_h.gif" and rows["2_m"].path.name == "2_m.png"
    assert (rows["1_h"].valence, rows["1_h"].arousal) == (5.0, 1.0)  # 3 and 1 on 1..5
    assert rows["2_m"].valence == 9.0 and rows["1_h"].valence_n == 20
    assert rows["1_h"].extra == {"moral_mean": 2.5}
    assert rows["4_x"].problem.startswith("no image file for id '4_x'")  # also arousal 6 > 5


def test_smid_img_name_column(tmp_path):
    _write(tmp_path / "SMID_norms.csv", "rownum,img_name,valence_mean,arousal_mean\n1,a.jpg,4,2\n")
    write_image(tmp_path / "img" / "a.jpg")
    (row,) = read_source("smid", tmp_path)
    assert row.id == "a" and row.path == tmp_path / "img" / "a.jpg" and row.problem is None
    assert row.valence_sd is None and row.extra == {"rownum": 1.0}


# NAPS: the published layout is in test_sources_layouts.py


# --- EmoMadrid ------------------------------------------------------------------------------------

def _emomadrid_images(root: Path) -> None:
    write_image(root / "images" / "EM0001.jpg")
    write_image(root / "images" / "EM0003.jpg")


def test_emomadrid_xlsx_banner_and_empty_thumbnails(tmp_path):
    openpyxl = pytest.importorskip("openpyxl")
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["EmoMadrid picture index"])
    sheet.append(["EM CODE", "Thumbnail", "Description", "Mean Valence", "SD Valence", "Mean Arousal"])
    sheet.append(["EM0001", "", "sunset", -2, 0.5, 2])
    sheet.append(["EM0002", "Empty", "withdrawn", 1.5, 0.5, 0])
    sheet.append(["EM0003", None, "street", 0, 0.5, -1])
    book.save(tmp_path / "EMindex.xlsx")
    _emomadrid_images(tmp_path)
    rows = read_source("emomadrid", tmp_path)
    assert [r.id for r in rows] == ["EM0001", "EM0002", "EM0003"]
    sunset, empty, street = rows
    assert (sunset.valence, sunset.arousal) == (1.0, 9.0)  # -2 and 2 on -2..2
    assert (street.valence, street.arousal) == (5.0, 3.0)
    assert sunset.path == tmp_path / "images" / "EM0001.jpg" and sunset.problem is None
    assert sunset.row == "EMindex.xlsx row 3"
    assert sunset.extra == {"description": "sunset", "sd_valence": 0.5}
    assert empty.problem == "no picture (Thumbnail is Empty)" and empty.path is None
    sd = read_source("emomadrid", tmp_path, options={"valence_sd": "SD Valence"})
    assert sd[0].valence_sd == 0.5


def test_emomadrid_csv_semicolons_comma_decimals_cp1252(tmp_path):
    text = ("Base de datos EmoMadrid;;;;\n"
            "EM CODE;Thumbnail;Descripción;Valence mean;Arousal mean\n"
            "EM0001;;Niño;1,5;-0,5\n"
            "EM0002;Empty;;0;0\n"
            "EM0003;;Calle;-2;2\n")
    _write(tmp_path / "EMindex.csv", text, newline="\r\n", encoding="cp1252")
    _emomadrid_images(tmp_path)
    rows = read_source("emomadrid", tmp_path)  # EMindex.xlsx is absent: EMindex.csv is read
    assert [r.id for r in rows] == ["EM0001", "EM0002", "EM0003"]
    nino, empty, street = rows
    assert (nino.valence_raw, nino.arousal_raw) == (1.5, -0.5)
    assert (nino.valence, nino.arousal) == (8.0, 4.0)
    assert nino.extra == {"descripción": "Niño"} and nino.row == "EMindex.csv line 3"
    assert empty.problem == "no picture (Thumbnail is Empty)"
    assert (street.valence, street.arousal) == (1.0, 9.0) and street.problem is None


# --- IED (cgna) -----------------------------------------------------------------------------------

def test_cgna_line_n_is_picture_n(tmp_path):
    _write(tmp_path / "valence_avg_10766_v2.txt", "1\n5.5\n\n9\n\n\n")
    _write(tmp_path / "arousal_avg_10766_v2.txt", "9\n3\n4\n1\n", newline="\r\n")
    write_image(tmp_path / "images" / "1.jpg")
    write_image(tmp_path / "images" / "2.JPG")
    write_image(tmp_path / "images" / "3.jpg")
    rows = read_source("cgna", tmp_path)
    assert [r.id for r in rows] == ["1", "2", "3", "4"]
    assert (rows[0].valence, rows[0].arousal) == (1.0, 9.0)
    assert rows[1].path == tmp_path / "images" / "2.JPG" and rows[1].valence_raw == 5.5
    assert rows[2].problem == "missing valence rating"
    assert rows[3].problem.startswith("no image file for id '4'")
    assert rows[3].row == "valence_avg_10766_v2.txt line 4"


def test_cgna_files_of_different_lengths_stop(tmp_path):
    _write(tmp_path / "valence_avg_10766_v2.txt", "1\n2\n3\n")
    _write(tmp_path / "arousal_avg_10766_v2.txt", "1\n2\n")
    with pytest.raises(RatingFileError, match="3 values, but arousal_avg_10766_v2.txt has 2"):
        read_source("cgna", tmp_path)
    (tmp_path / "arousal_avg_10766_v2.txt").unlink()
    with pytest.raises(RatingFileError, match="arousal_avg_10766_v2.txt"):
        read_source("cgna", tmp_path)


# --- DIRTI and the generic reader -----------------------------------------------------------------

def test_dirti_is_the_generic_reader_on_1_to_9(tmp_path):
    _write(tmp_path / "DIRTI ratings.csv", "Image;Valence (M);Arousal (M)\nd/001.jpg;1;9\nd/002.jpg;5,5;3\n")
    write_image(tmp_path / "d" / "001.jpg")
    assert dirti.DEFAULTS["scale"] == "1,9"
    rows = read_source("dirti", tmp_path, options={"ratings": "DIRTI ratings.csv", "path": "Image",
                                                   "valence": "Valence (M)", "arousal": "Arousal (M)"})
    assert [r.id for r in rows] == ["d/001.jpg", "d/002.jpg"] and rows[0].source == "dirti"
    assert (rows[0].valence, rows[0].arousal) == (1.0, 9.0) and rows[1].valence_raw == 5.5
    assert rows[0].path == tmp_path / "d" / "001.jpg"


GENERIC_OPTIONS = {"path": "file", "valence": "val", "arousal": "aro", "scale": "1,7", "id": "code",
                   "group": "grp", "valence_sd": "val sd"}
GENERIC_ROWS = [("a1", "pics\\a.jpg", "1", "7", "0.5", "x", "left"),
                ("a2", "pics/b.png", "4", "4", "", "x", "right"),
                ("a3", "", "2", "3", "1", "", "")]


def _generic_rows_check(rows, base: Path, where: str) -> None:
    assert [r.id for r in rows] == ["a1", "a2", "a3"]
    a1, a2, a3 = rows
    assert a1.path == base / "pics" / "a.jpg" and a2.path == base / "pics" / "b.png"
    assert (a1.valence, a1.arousal) == (1.0, 9.0) and (a2.valence, a2.arousal) == (5.0, 5.0)
    assert a1.valence_sd == 0.5 and a2.valence_sd is None
    assert a1.group == "x" and a3.group is None
    assert a1.extra == {"note": "left"} and a1.row == f"{where} 2"
    assert a3.problem == "no picture path in this row" and a3.path is None


def test_generic_csv_with_bom_and_crlf(tmp_path):
    header = "code,file,val,aro,val sd,grp,note\n"
    body = "".join(",".join(r) + "\n" for r in GENERIC_ROWS)
    _write(tmp_path / "set" / "ratings.csv", header + body, newline="\r\n", bom=True)
    rows = read_source("csv", tmp_path / "set" / "ratings.csv", name="mine", options=GENERIC_OPTIONS)
    _generic_rows_check(rows, tmp_path / "set", "ratings.csv line")
    assert rows[0].source == "mine"


def test_generic_tsv_with_root_and_ratings_options(tmp_path):
    header = "code\tfile\tval\taro\tval sd\tgrp\tnote\n"
    body = "".join("\t".join(r) + "\n" for r in GENERIC_ROWS)
    _write(tmp_path / "meta" / "ratings.tsv", header + body)
    options = {**GENERIC_OPTIONS, "ratings": "ratings.tsv", "root": "../photos"}
    rows = read_source("csv", tmp_path / "meta", options=options)
    _generic_rows_check(rows, tmp_path / "meta" / "../photos", "ratings.tsv line")


def test_generic_xlsx_by_position(tmp_path):
    openpyxl = pytest.importorskip("openpyxl")
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["code", "file", "val", "aro", "val sd", "grp", "note"])
    for r in GENERIC_ROWS:
        sheet.append([v if v else None for v in r])
    book.save(tmp_path / "ratings.xlsx")
    options = {**GENERIC_OPTIONS, "path": "2", "valence": "3", "arousal": "4"}
    rows = read_source("csv", tmp_path / "ratings.xlsx", options=options)
    _generic_rows_check(rows, tmp_path, "ratings.xlsx row")


def test_generic_needs_a_file_and_its_columns(tmp_path):
    _write(tmp_path / "ratings.csv", "file,valence\na.jpg,3\n")
    with pytest.raises(RatingFileError, match="ratings"):
        read_source("csv", tmp_path)
    with pytest.raises(RatingFileError, match="no column 'arousal'.*'file', 'valence'"):
        read_source("csv", tmp_path / "ratings.csv", options={"path": "file"})


# --- the shared helpers ---------------------------------------------------------------------------

def test_to_float_missing_markers_and_decimal_commas():
    for text in ("", " . ", "NA", "nan", "N/A"):
        assert math.isnan(to_float(text))
    assert to_float(" 4.5 ") == 4.5 and to_float("1,25") == 1.25 and to_float("\u22122") == -2
    with pytest.raises(ValueError):
        to_float("abc")


def test_clean_id_drops_spreadsheet_zeros_only():
    assert clean_id("1050.0") == "1050" and clean_id(" 2345.1 ") == "2345.1" and clean_id("EM0001") == "EM0001"


def test_find_column_names_positions_repeats_and_alternatives():
    header = ["", "ID", "M", "SD", "M", "Valence  Mean"]
    assert find_column(header, "id") == 1
    assert find_column(header, "1") == 0 and find_column(header, "7") is None
    assert find_column(header, "M#2") == 4 and find_column(header, "M#3") is None
    assert find_column(header, "Mean Valence|valence mean") == 5
    assert find_column(header, "nothing") is None


def test_read_text_encodings_and_separators(tmp_path):
    cp = _write(tmp_path / "a.csv", "a;b\r\nNiño;1,5\r", encoding="cp1252")
    assert read_text(cp) == "a;b\nNiño;1,5\n"
    utf16 = tmp_path / "b.txt"
    utf16.write_bytes("x\ty\n".encode("utf-16"))
    assert read_text(utf16) == "x\ty\n"
    assert guess_sep(cp, read_text(cp)) == ";"
    assert guess_sep(Path("x.csv"), "a,b\n1,2\n") == "," and guess_sep(Path("x.tsv"), "a,b") == "\t"


def test_image_folder_matches_stems_in_any_case(tmp_path):
    write_image(tmp_path / "A001.bmp", fmt="BMP")
    write_image(tmp_path / "x.JPG")
    (tmp_path / "Thumbs.db").write_bytes(b"")
    folder = ImageFolder(tmp_path)
    assert folder.find("A001") == tmp_path / "A001.bmp" and folder.find("X") == tmp_path / "x.JPG"
    assert folder.find("Thumbs") is None
    path, problem = ImageFolder(tmp_path / "nope").lookup("3")
    assert path == tmp_path / "nope" / "3.jpg" and "no such folder" in problem


def test_image_folder_keeps_unreadable_pictures_so_the_build_says_why(tmp_path):
    """A symlink loop named like a picture is a match: decoding it says "symlink loop", not "no image file"."""
    from picaffect.data.build import SourceSpec, build

    _write(tmp_path / "SMID_norms.csv", '"","valence_mean","arousal_mean"\n"a",3,3\n"loop",3,3\n')
    write_image(tmp_path / "img" / "a.jpg")
    (tmp_path / "img" / "loop.jpg").symlink_to(tmp_path / "img" / "loop.jpg")
    assert ImageFolder(tmp_path / "img").find("loop") == tmp_path / "img" / "loop.jpg"
    report = build(tmp_path / "out", [SourceSpec("smid", tmp_path, "smid")], size=8, progress=False, plots=False)
    (skipped,) = report["skipped_rows"]
    assert skipped["row"] == "SMID_norms.csv line 3" and skipped["reason"].endswith("loop.jpg: symlink loop")
