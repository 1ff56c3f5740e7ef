import pytest

from stylegan_eval.published import (
    METRIC_COLUMNS, OFFICIAL_FFHQ, PUBLISHED, PublishedRow, base_config, generator_kind, published_rows,
)


def test_config_f_maps_to_table1_and_table4_style_m8():
    rows = published_rows("F")
    paper = rows[0]
    assert paper.values == {"fid": 4.40, "ppl_wfull": 234.0, "ppl_wend": 195.9, "ls_w": 3.79}
    assert "Table 1" in paper.sources["fid"] and "Table 4" in paper.sources["fid"]
    assert "Table 3" in paper.sources["ls_w"]
    assert rows[1] is OFFICIAL_FFHQ
    assert OFFICIAL_FFHQ.values["ppl_zfull"] == 664.8854 and OFFICIAL_FFHQ.values["ls_z"] == 165.0106


def test_size_variants_share_the_paper_configuration():
    assert published_rows("F-cpu32") == published_rows("F") == published_rows("F-test16")
    assert base_config("B-cpu32") == "B"
    assert base_config("trad-m8-256") == "trad-m8"
    assert base_config("my-own") is None and base_config(None) is None
    assert published_rows("my-own") == []


def test_table_values_as_reference():
    b = published_rows("B")[0].values
    assert b == {"fid": 5.25, "ppl_zfull": 412.0, "ppl_zend": 415.3, "ls_z": 10.78}
    t8 = published_rows("trad-m8")[0].values
    assert t8 == {"fid": 4.87, "ppl_zfull": 896.2, "ppl_zend": 902.0, "ls_z": 170.29,
                  "ppl_wfull": 324.5, "ppl_wend": 212.2, "ls_w": 6.52}
    assert published_rows("E-mix50")[0].values == {"ppl_wfull": 231.5, "ppl_wend": 182.1, "ls_w": 3.51}
    assert published_rows("D")[0].values["ppl_wend"] == 376.6
    assert published_rows("style-m1")[0].values["fid"] == 4.60
    celeba = published_rows("A", dataset="CelebA-HQ")
    assert [r.values for r in celeba] == [{"fid": 7.79}]
    assert len(published_rows("A", dataset=None)) == 2


def test_every_row_names_its_source_for_every_value():
    for rows in PUBLISHED.values():
        for r in rows:
            assert set(r.values) <= set(METRIC_COLUMNS)
            assert set(r.sources) == set(r.values) and all(r.sources.values())


def test_generator_kind_and_mapping_depth():
    assert generator_kind("F-cpu32") == ("style-based", 8)
    assert generator_kind("B-test16") == ("traditional", 0)
    assert generator_kind("style-m2") == ("style-based", 2)
    assert generator_kind("unknown") is None


def test_unknown_column_refused():
    with pytest.raises(ValueError, match="unknown columns"):
        PublishedRow("F", "x", "FFHQ", {"fid50": 1.0})
