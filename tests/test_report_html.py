"""``python -m descbench.report DIR --html``: one self-contained page, each task's section as the task writes it,
the Markdown report unchanged, images within a size bound, and the page checked in headless Chromium."""

from __future__ import annotations

import base64
import io
import json
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageStat
from report_fixtures import make_mixed_dir
from test_report import make_classification_sweep, run_report
from test_report_tasks import bias_result, shifted, write_runs

from descbench.report import write_report
from descbench.report.html import MAX_SIDE, HtmlPage, encode_image
from descbench.tasks.rec.gallery import GALLERY_COLUMNS

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = ROOT / "tests" / "golden" / "report" / "mixed.md"
# a resource the page would load (script, style, image, frame), or any link off the machine
NETWORK = re.compile(r"""(?:src|href|srcset|action)\s*=\s*["']?\s*(?:https?:)?//|url\(\s*["']?(?:https?:)?//|@import""")


def _uris(page: str) -> list[str]:
    return re.findall(r'src="(data:[^"]+)"', page)


def _decoded(uri: str) -> Image.Image:
    return Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1])))


def _sections(page: str) -> list[str]:
    return re.findall(r'<section id="[^"]+"><h2>([^<]+)</h2>', page)


def test_markdown_report_is_byte_for_byte_todays_with_or_without_html(tmp_path):
    """report.md of a dir with every task equals the one the report wrote before report.html existed."""
    root = make_mixed_dir(tmp_path / "mixed")
    expected = GOLDEN.read_text(encoding="utf-8")
    for html in (False, True):
        write_report(root, html=html)
        assert (root / "report.md").read_text(encoding="utf-8").replace(str(root.resolve()), "<ROOT>") == expected
        assert (root / "report.html").exists() is html


def test_page_is_self_contained_with_a_section_per_task_present(tmp_path):
    root = make_mixed_dir(tmp_path / "mixed")
    report = write_report(root, html=True)
    page = report.html.read_text(encoding="utf-8")
    assert _sections(page) == [
        "Missing or failed jobs",
        "Classification",
        "REC",
        "Keypoints",
        "Marking bias",
        "All runs",
    ]
    assert NETWORK.search(page) is None
    assert "<link" not in page and "<iframe" not in page
    # every figure of report.md is in the page, embedded: the same bytes as the PNG the report wrote
    embedded = {base64.b64decode(u.split(",", 1)[1]) for u in _uris(page)}
    for name in ("accuracy_vs_num_desc", "entropy_vs_num_desc", "rec_accuracy", "keypoints_pck", "marking_bias"):
        assert (root / f"{name}.png").read_bytes() in embedded
    # the synthetic runs have no predictions or saved config: each REC gallery says why it is missing
    assert page.count("no examples: ") == 4
    assert len(report.left_out) == 4 and all("predictions.jsonl not found" in item for item in report.left_out)
    assert "Left out of this page (4):" in page


def test_sections_only_for_the_tasks_present(tmp_path):
    sweep = make_classification_sweep(tmp_path / "sweep")
    page = write_report(sweep, html=True).html.read_text(encoding="utf-8")
    assert _sections(page) == ["Missing or failed jobs", "Classification", "All runs"]
    assert "<h2>REC</h2>" not in page and "Keypoints" not in page and "Marking bias" not in page


def test_cells_link_to_a_drill_down_ordered_by_delta_against_the_baseline(tmp_path):
    """The drill-down data: per-class accuracy of each cell (mean over seeds), the texts each class was scored
    with, the default baseline; the sweep table's cells link to their drill-down entries."""
    sweep = make_classification_sweep(tmp_path / "sweep")
    (sweep / "0" / "descriptions.json").write_text(
        json.dumps(
            {
                "classes": [
                    {"index": 1, "class": "ladybird", "texts": ["ladybird, which has spots"]},
                    {"index": 0, "class": "stop sign", "texts": ["stop sign, which is red", "stop sign </script>"]},
                ]
            }
        )
    )
    repeated = {"classes": [{"index": i, "class": n, "texts": [n]} for i, n in enumerate(["stop sign", "ladybird"])]}
    repeated["repetitions"] = [{"options": {}, "classes": []}] * 3  # a random control repeated 3 times
    (sweep / "2" / "descriptions.json").write_text(json.dumps(repeated))
    page = write_report(sweep, html=True).html.read_text(encoding="utf-8")
    [raw] = re.findall(r'<script type="application/json" id="[^"]+">(.*?)</script>', page, re.S)
    drill = json.loads(raw.replace("<\\/", "</"))
    assert drill["classes"] == ["stop sign", "ladybird"]
    names = [c["name"] for c in drill["cells"]]
    assert names[0] == "detailed=false · num_desc=1" and len(names) == 6 and drill["baseline"] == 0
    # detailed=true, num_desc=1: seeds 0 and 1 (top-1 0.15 and 0.18) -> ladybird 16.5 %, stop sign 90 %
    cell = drill["cells"][names.index("detailed=true · num_desc=1")]
    assert cell["acc"] == [90.0, 16.5]
    assert [[drill["texts"][i] for i in per_class] for per_class in cell["desc"]] == [
        ["stop sign, which is red", "stop sign </script>"],
        ["ladybird, which has spots"],
    ]
    assert cell["desc_note"] == "as encoded in run 0"
    repeated_cell = drill["cells"][names.index("detailed=true · num_desc=2")]
    assert repeated_cell["desc_note"] == "as encoded in run 2 of repetition 1 of 3"
    assert drill["cells"][0]["desc"] is None and drill["cells"][0]["desc_note"].startswith("no descriptions.json")
    # the sweep table: the cell "16.50 ± 2.12 / ..." links to that entry
    assert re.search(rf'<a href="#{cell["id"]}">16\.50 ± 2\.12 / 2\.280 ± 0\.028 \(n=2\)</a>', page)
    assert f'<details class="cell" id="{cell["id"]}"' in page
    assert "stop sign </script>" not in page  # the texts cannot end the script element early


def test_published_numbers_beside_the_cells_that_have_one(tmp_path):
    """A run about a published number shows it beside its cell: Δ when it shares every setting, else the settings
    that differ (Menon & Vondrick's class-name baseline on ImageNet, 58.46 %)."""
    sweep = make_classification_sweep(tmp_path / "sweep")
    for job, backbone in (("0", "ViT-B-32"), ("1", "shapes-clip")):  # detailed=true, num_desc=1, seeds 0 and 1
        path = sweep / job / "results.json"
        results = json.loads(path.read_text())
        results.update(
            {"dataset": "imagenet", "split": "val", "describe.source": "classname", "describe.template": "{classname}"}
        )
        results.update({"backbone": backbone, "pretrained": "openai"})
        path.write_text(json.dumps(results))
    page = write_report(sweep, html=True).html.read_text(encoding="utf-8")
    source = "Menon &amp; Vondrick, Visual Classification via Description from Large Language Models, ICLR 2023"
    sweep_tables = re.findall(r'<table class="sweep">.*?</table>', page, re.S)
    assert [t.count("<th>published (") for t in sweep_tables] == [
        1,
        1,
        0,
    ]  # the two ImageNet panels (first seen), shapes
    assert f"top1: published 58.46 % ({source}): Δ -43.46" in page  # 15.00 - 58.46
    assert f"top1: published 58.46 % ({source}): not comparable: backbone = shapes-clip vs ViT-B-32" in page


def test_images_are_downscaled_and_a_14_run_sweep_stays_under_15_mb(tmp_path):
    """14 runs each with 16 large example strips of noise (the worst case for compression): every image embedded is
    downscaled; 8 per run (the default) all fit; 16 per run hit the image budget, and the page still stays under
    15 MB and lists each image it left out."""
    rng = np.random.default_rng(0)
    noise = tmp_path / "noise.png"
    Image.fromarray(rng.integers(0, 256, (900, 2700, 3), dtype=np.uint8)).save(noise, compress_level=1)
    runs = {
        str(i): bias_result("coco_persons", i, shifted(0.001 * i), intervals=False, num_images=20) for i in range(14)
    }
    root = write_runs(tmp_path / "bias", runs)
    for i in range(14):
        (root / str(i) / "examples").mkdir()
        for k in range(16):
            os.link(noise, root / str(i) / "examples" / f"{k:03d}_unmarked_circled_control.png")
    for count in (8, 16):
        report = write_report(root, html=True, examples=count)
        assert report.html.stat().st_size < 15 * 2**20
        page = report.html.read_text(encoding="utf-8")
        strips = [_decoded(u) for u in _uris(page)][1:]  # the first is the bar chart
        assert strips and all(im.size == (720, 240) for im in strips)
        assert len(strips) + len(report.left_out) == 14 * count
        if count == 8:
            assert report.left_out == [] and "nothing was left out" in page
        else:
            assert report.left_out and all("image budget of 12 MB is spent" in item for item in report.left_out)
            assert f"Left out of this page ({len(report.left_out)}):" in page
            assert page.count('<p class="left-out">left out: ') == len(report.left_out)


def test_encode_image_scales_down_never_up_and_keeps_the_smaller_format():
    big = Image.new("RGB", (1000, 500), (200, 10, 10))
    image = _decoded(encode_image(big))
    assert image.size == (MAX_SIDE, MAX_SIDE // 2) and image.format == "PNG"  # flat colour: PNG is smaller
    small = Image.new("RGB", (40, 30))
    assert _decoded(encode_image(small)).size == (40, 30)
    photo = Image.fromarray(np.random.default_rng(1).integers(0, 256, (400, 400, 3), dtype=np.uint8))
    assert _decoded(encode_image(photo)).format == "JPEG"


def test_budget_leaves_images_out_and_says_which(tmp_path):
    page = HtmlPage(root=tmp_path, out=tmp_path, budget=3000)
    flat = Image.new("RGB", (100, 100), (0, 0, 255))
    first = page.image_uri(flat, "first")
    assert first is not None and page.used == len(first)
    noisy = Image.fromarray(np.random.default_rng(2).integers(0, 256, (300, 300, 3), dtype=np.uint8))
    assert page.image_uri(noisy, "run 3, expression 7") is None
    assert page.left_out == ["run 3, expression 7 (the page's image budget of 0 MB is spent)"]
    assert page.img(None, "an expression") == '<p class="left-out">left out: an expression</p>'


def test_cli_writes_the_page_and_refuses_a_negative_count(tmp_path):
    sweep = make_classification_sweep(tmp_path / "sweep")
    result = run_report([str(sweep), "--html", "--out", str(tmp_path / "out")])
    assert result.returncode == 0, result.stderr
    assert f"page:   {tmp_path / 'out' / 'report.html'} (" in result.stdout
    bad = run_report([str(sweep), "--html", "--examples", "-1"])
    assert bad.returncode == 2 and bad.stderr.strip() == "error: --examples -1: give a count of 0 or more"
    without = run_report([str(sweep), "--examples", "4"])
    assert without.returncode == 2
    assert without.stderr.strip() == "error: --examples sets the galleries of report.html: add --html"


# --------------------------------------------------------------------------- in a real browser

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1280,1600",
]


def _browser(tmp_path: Path):
    """Headless Chromium driven by Selenium and Debian's chromedriver (nothing downloaded); a skip saying what is
    missing on a developer's machine, a failure in CI (``.ci/run`` installs both)."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver_path = shutil.which("chromedriver")
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        webdriver = None
    missing = [
        name
        for name, found in (("chromium", chromium), ("chromium-driver", driver_path), ("selenium", webdriver))
        if not found
    ]
    if missing:
        reason = (
            f"{' and '.join(missing)} not installed: apt-get install chromium chromium-driver; pip install selenium "
            "(.ci/run installs them)"
        )
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the browser test: {reason}")
        pytest.skip(reason)
    os.environ.setdefault("SE_OFFLINE", "true")  # Selenium Manager never looks for a driver online
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in [*CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'chromium-profile'}"]:
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(executable_path=driver_path), options=options)


def _not_blank(element) -> float:
    """The grey-level standard deviation of what the element shows on screen (0 for a blank region)."""
    element.parent.execute_script("arguments[0].scrollIntoView({block: 'center'});", element)
    image = Image.open(io.BytesIO(element.screenshot_as_png)).convert("L")
    return ImageStat.Stat(image).stddev[0]


def _console_errors(driver) -> list[str]:
    return [entry["message"] for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]


@pytest.mark.slow
def test_pages_of_a_real_sweep_and_a_rec_run_render_in_headless_chromium(tmp_path):
    """A real sweep (detailed x num_desc) and a real REC run, their pages opened from disk in Chromium: no console
    error, the sweep table and both curves drawn, a cell's drill-down opening on click down to a class's texts,
    the REC gallery's images loaded and drawn."""
    from conftest import run_eval
    from selenium.webdriver.common.by import By

    driver = _browser(tmp_path)  # skips (or fails in CI) before the runs when the browser is missing
    try:
        sweep = run_eval(
            ["-m", "describe.detailed=true,false", "num_desc=1,4", "logger=none", f"hydra.sweep.dir={tmp_path}/sweep"],
            tmp_path,
        )
        assert sweep.returncode == 0, sweep.stderr[-2000:]
        rec = run_eval(["task=rec", "visual_prompt=circle", "logger=none", f"hydra.run.dir={tmp_path}/rec"], tmp_path)
        assert rec.returncode == 0, rec.stderr[-2000:]
        pages = {}
        for name in ("sweep", "rec"):
            result = run_report([str(tmp_path / name), "--html", "--out", str(tmp_path / f"report_{name}")])
            assert result.returncode == 0, result.stderr[-2000:]
            pages[name] = tmp_path / f"report_{name}" / "report.html"
            text = pages[name].read_text(encoding="utf-8")
            assert NETWORK.search(text) is None and "nothing was left out" in text

        driver.get(pages["sweep"].as_uri())
        table = driver.find_element(By.CSS_SELECTOR, "table.sweep")
        assert table.is_displayed() and len(table.find_elements(By.CSS_SELECTOR, "tbody tr")) == 2
        assert _not_blank(table) > 5
        plots = driver.find_elements(By.CSS_SELECTOR, "figure.plot img")
        assert len(plots) == 2
        for plot in plots:
            assert driver.execute_script("return arguments[0].complete && arguments[0].naturalWidth", plot) > 0
            assert _not_blank(plot) > 5
        # a cell of the table opens its drill-down (num_desc=4 against the default baseline, num_desc=1) ...
        target = "detailed=false · num_desc=4"
        cell = next(c for c in driver.find_elements(By.CSS_SELECTOR, "details.cell") if target in c.text)
        assert cell.get_attribute("open") is None
        link = driver.find_element(By.CSS_SELECTOR, f'table.sweep a[href="#{cell.get_attribute("id")}"]')
        link.click()
        assert cell.get_attribute("open") == "true"
        rows = cell.find_elements(By.CSS_SELECTOR, "table.drill-table tbody tr")
        assert len(rows) == 24 and all(row.is_displayed() for row in rows)  # the world's 24 classes
        deltas = [float(r.find_elements(By.TAG_NAME, "td")[4].text) for r in rows]
        assert deltas == sorted(deltas, reverse=True) and deltas[0] > 0
        for row in rows:  # Δ = accuracy - baseline accuracy, as shown
            accuracy, baseline, delta = (float(td.text) for td in row.find_elements(By.TAG_NAME, "td")[2:5])
            assert delta == pytest.approx(accuracy - baseline, abs=0.011)
        # ... a class there opens to the texts it was scored with ...
        texts = rows[0].find_element(By.CSS_SELECTOR, "ul.texts")
        assert not texts.is_displayed()
        rows[0].find_element(By.CSS_SELECTOR, "details.class summary").click()
        assert texts.is_displayed() and len(texts.find_elements(By.TAG_NAME, "li")) == 4  # num_desc=4
        # ... and another baseline (the cell itself) redraws it: every Δ is then 0
        select = cell.find_element(By.XPATH, "ancestor::div[@class='drill']//select")
        select.find_element(By.XPATH, f"option[normalize-space()='{target}']").click()
        rows = cell.find_elements(By.CSS_SELECTOR, "table.drill-table tbody tr")
        assert {float(r.find_elements(By.TAG_NAME, "td")[4].text) for r in rows} == {0.0}
        assert _console_errors(driver) == []
        driver.save_screenshot(str(tmp_path / "sweep.png"))

        driver.get(pages["rec"].as_uri())
        images = driver.find_elements(By.CSS_SELECTOR, ".gallery img")
        assert len(images) == 16  # 8 expressions, each the annotated image and the marked winner
        for image in images:
            assert driver.execute_script("return arguments[0].complete && arguments[0].naturalWidth", image) > 0
        assert len(driver.find_elements(By.CSS_SELECTOR, ".gallery.wrong figure")) == 4
        assert len(driver.find_elements(By.CSS_SELECTOR, ".gallery.right figure")) == 4
        assert _not_blank(driver.find_element(By.CSS_SELECTOR, ".gallery.wrong")) > 5
        assert _console_errors(driver) == []
        driver.save_screenshot(str(tmp_path / "rec.png"))
    finally:
        driver.quit()


# --------------------------------------------------------------------------- the REC gallery


def _records(dataset, correct) -> list[dict]:
    """Prediction records as a job writes them: expression ``i`` picks its first candidate, right when ``correct(i)``."""
    from descbench.core.marking.engine import RecPrediction
    from descbench.tasks.rec.outputs import prediction_record

    rows = []
    for i, e in enumerate(dataset.expressions):
        chosen = e.gold_box if correct(i) else next(b for b in e.boxes if b != e.gold_box)
        p = RecPrediction(i, e.image_id, e.split, e.expression, e.boxes.index(chosen), chosen, e.gold_box, 1.0,
                          1.0 if correct(i) else 0.0, correct(i), len(e.boxes))  # fmt: skip
        rows.append(prediction_record(p))
    return rows


def test_gallery_sample_is_seeded_half_right_half_wrong_and_fills_in():
    from descbench.tasks.rec.gallery import choose_examples

    records = [{"index": i, "correct": i % 4 == 0} for i in range(40)]  # 10 right, 30 wrong
    right, wrong = choose_examples(records, 8)
    assert (
        (len(right), len(wrong)) == (4, 4) and all(r["correct"] for r in right) and not any(r["correct"] for r in wrong)
    )
    assert [r["index"] for r in right] == sorted(r["index"] for r in right)
    assert choose_examples(records, 8) == (right, wrong)  # seeded: the page and W&B show the same expressions
    right, wrong = choose_examples([r for r in records if r["correct"] or r["index"] < 6], 8)  # 10 right, 4 wrong
    assert (len(right), len(wrong)) == (5, 3) or (len(right), len(wrong)) == (4, 4)
    right, wrong = choose_examples(records[:8:4] + records[1:4], 8)  # 2 right, 3 wrong: all shown
    assert (len(right), len(wrong)) == (2, 3)
    assert choose_examples(records, 0) == ([], [])


def test_gallery_item_draws_every_candidate_winner_gold_and_the_marked_input_the_model_scored():
    from descbench.core.marking.geometry import Geometry, GeometryMode, render_marked_input
    from descbench.core.marking.visual_prompts import parse_prompt_specs
    from descbench.tasks.marking import GOLD
    from descbench.tasks.rec.gallery import CANDIDATE, CHOSEN, GalleryMismatch, build_gallery, draw_item
    from descbench.world.builders import load_shapes_rec

    dataset = load_shapes_rec(num_canvases=6)
    records = _records(dataset, lambda i: i % 2 == 0)
    prompts = parse_prompt_specs(["circle", "crop"])
    geometry = Geometry(GeometryMode.pad)
    right, wrong = build_gallery(dataset, records, prompts, 96, geometry, 4)
    assert [i.record["correct"] for i in right + wrong] == [True, True, False, False]
    item = wrong[0]
    colours = {c for _, c in item.image.getcolors(1 << 16)}
    assert {CANDIDATE, CHOSEN, GOLD} <= colours  # a wrong pick: the winner in red apart from the gold box
    image = dataset.load_image(item.record["image_id"])
    assert [key for key, _ in item.marked] == [p.key for p in prompts]
    for (_, marked), spec in zip(item.marked, prompts):  # what the job fed the model, drawn by the same code
        expected = render_marked_input(image, item.record["chosen_box"], spec, 96, geometry)
        assert marked.size == (96, 96) and marked.tobytes() == expected.tobytes()
    bad = {**records[1], "expression": "a thing no run scored"}
    with pytest.raises(GalleryMismatch, match=r"expression 1 of the rebuilt data set is '.+' on image .+, the run's "
                       r"prediction names 'a thing no run scored'"):  # fmt: skip
        draw_item(dataset, bad, prompts, 96, geometry)


def test_a_run_config_resolves_its_hydra_paths_outside_the_job(tmp_path):
    from descbench.report.runs import load_run_config

    hydra = tmp_path / "run" / ".hydra"
    hydra.mkdir(parents=True)
    (hydra / "config.yaml").write_text("dataset:\n  root: ${oc.env:NO_SUCH_VAR_XYZ,${hydra:runtime.cwd}/data}\n")
    (hydra / "hydra.yaml").write_text("hydra:\n  runtime:\n    cwd: /somewhere\n")
    assert load_run_config(tmp_path / "run").dataset.root == "/somewhere/data"
    with pytest.raises(ValueError, match=r"\.hydra: the job's saved config cannot be read"):
        load_run_config(tmp_path / "elsewhere")


@pytest.mark.slow
def test_a_rec_job_logs_its_gallery_as_a_wandb_table(tmp_path):
    """W&B gets the gallery of the page: one row per example of the seeded sample, wrong ones first."""
    from conftest import run_eval
    from wandb_records import read_records

    args = ["experiment=rec_photos", "dataset.builder.num_canvases=6", "dataset.builder.canvas_size=160"]
    result = run_eval([*args, "task.num_workers=0", "task.num_examples=4", "logger=wandb", f"hydra.run.dir={tmp_path}/run"],
                      tmp_path, env={"WANDB_MODE": "offline"})  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    [run_file] = (tmp_path / "run" / "wandb").glob("offline-run-*/run-*.wandb")
    logged = {}
    for record in read_records(run_file):
        if record.WhichOneof("record_type") == "history":
            logged.update(
                {item.key or ".".join(item.nested_key): json.loads(item.value_json) for item in record.history.item}
            )
    assert logged["rec_gallery._type"] == "table-file"
    assert (logged["rec_gallery.nrows"], logged["rec_gallery.ncols"]) == (4, 6)
    [table_file] = (tmp_path / "run" / "wandb").glob("offline-run-*/files/media/table/rec_gallery_*.table.json")
    table = json.loads(table_file.read_text())
    assert table["columns"] == GALLERY_COLUMNS
    # the seeded sample of report.html (same seed, same count), wrong ones first
    from descbench.tasks.rec.gallery import choose_examples
    from descbench.tasks.rec.outputs import read_predictions

    right, wrong = choose_examples(read_predictions(tmp_path / "run"), 4)
    assert right and wrong  # both kinds exist in this run, so both are in the sample
    assert [row[:4] for row in table["data"]] == [
        [r["split"], r["expression"], r["correct"], r["iou"]] for r in [*wrong, *right]
    ]
    assert all(row[4:] == ["Image", "Image"] for row in table["data"])
