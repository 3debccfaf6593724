"""cmsc_tf.eval.paper_table3: every published number against the paper's text; the comparison table."""

import re

import pytest

from cmsc_tf.eval import paper_table3


def _table3_numbers(shared_dir):
    """The decimals of Table III in the order the text extraction of the paper lists them.

    The text gives, for each set (Set5, Set14, BSD100, Urban100), the PSNR, SSIM
    and IFC columns, each 36 numbers: 12 methods at x2, then x3, then x4. The
    prose that interrupts the table has no decimal numbers.
    """
    text = (shared_dir / "paper" / "cmsc_paper.txt").read_text()
    start = text.index(" TABLE III:")
    end = text.index("Ground truth HR", start)
    return [float(v) for v in re.findall(r"\d+\.\d+", text[start:end])]


def test_every_entry_matches_the_paper_text(shared_dir):
    numbers = _table3_numbers(shared_dir)
    assert len(numbers) == 4 * 3 * 36
    position = 0
    for dataset in paper_table3.DATASETS:
        for metric in paper_table3.METRICS:
            column = [paper_table3.paper_scores(method)[(dataset, scale)][metric]
                      for scale in paper_table3.SCALES for method in paper_table3.METHODS]
            assert column == numbers[position:position + 36], (dataset, metric)
            position += 36


def _markdown_cells(text, heading):
    section = text[text.index(heading):]
    return {line.split("|")[1].strip(): [c.strip() for c in line.split("|")[2:-1]]
            for line in section.splitlines()[1:] if line.startswith("| ")}


def test_cmsc_rows_match_the_spec(shared_dir):
    rows = _markdown_cells((shared_dir / "docs" / "cmsc-spec.md").read_text(), "Table III, CMSC (ours)")
    cmsc = paper_table3.paper_scores("CMSC")
    for dataset in paper_table3.DATASETS:
        for scale, cell in zip(paper_table3.SCALES, rows[dataset]):
            expected = [float(v) for v in cell.split("/")]
            assert [cmsc[(dataset, scale)][m] for m in paper_table3.METRICS] == expected


def test_bicubic_rows_match_the_protocol(shared_dir):
    text = (shared_dir / "docs" / "protocol.md").read_text()
    section = text[text.index("## Reference numbers (Table III, Bicubic)"):]
    bicubic = paper_table3.paper_scores("Bicubic")
    checked = 0
    for line in section.splitlines():
        cells = [c.strip() for c in line.split("|")[1:-1]]
        if len(cells) == 5 and cells[1].isdigit():
            assert [bicubic[(cells[0], int(cells[1]))][m] for m in paper_table3.METRICS] == [
                float(v) for v in cells[2:]]
            checked += 1
    assert checked == 6


def test_vdsr_set5_x2_is_the_spec_peer_number():
    # cmsc-spec.md: "Peers in the same table (Set5 x2 PSNR): ... VDSR 37.53"
    assert paper_table3.paper_scores("VDSR")[("Set5", 2)]["psnr"] == 37.53


def test_measured_scores_reads_evaluation_json():
    record = {"dataset": "Set5", "scale": 2, "psnr": 33.681, "ssim": 0.93041, "seconds_per_image": 0.1,
              "images": [{"name": "baby", "psnr": 37.0}]}
    for results in ([record], {"results": [record]}):
        assert paper_table3.measured_scores(results) == {("Set5", 2): {"psnr": 33.681, "ssim": 0.93041}}


def test_comparison_table_layout():
    ours = {("Set14", 3): {"psnr": 27.543, "ssim": 0.77412}, ("Set5", 2): {"psnr": 37.6249, "ssim": 0.95961},
            ("skimage", 2): {"psnr": 30.0, "ssim": 0.9}}
    table = paper_table3.comparison_table(
        [("ours", ours), ("VDSR (paper)", paper_table3.paper_scores("VDSR"))], metrics=("psnr", "ssim"),
        columns=ours)
    lines = table.splitlines()
    assert lines[0] == "Cells: PSNR / SSIM"
    # Table III's order of sets, other sets last; the paper has no skimage column.
    assert lines[2] == "| Method | Set5 x2 | Set14 x3 | skimage x2 |"
    assert lines[4] == "| ours | 37.62 / 0.9596 | 27.54 / 0.7741 | 30.00 / 0.9000 |"
    assert lines[5] == "| VDSR (paper) | 37.53 / 0.9587 | 29.78 / 0.8318 | - |"
    # A metric a row lacks shows as missing rather than half a cell.
    assert "| ours | - |" in paper_table3.comparison_table([("ours", ours)], metrics=("psnr", "ifc"))


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="unknown method 'EDSR'"):
        paper_table3.paper_scores("EDSR")
    with pytest.raises(ValueError, match="unknown metrics"):
        paper_table3.comparison_table([("a", {})], metrics=("lpips",))
    with pytest.raises(ValueError, match="at least one row"):
        paper_table3.comparison_table([])
