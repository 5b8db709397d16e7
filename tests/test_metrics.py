import math

import pytest
import torch

from descbench.core.metrics import MeanEntropy, build_classification_metrics, entropy_nats, scale_scores


def test_minmax_scale_maps_each_row_to_minus_ten_ten():
    scores = torch.tensor([[0.1, 0.3, 0.2], [0.5, 0.5, 0.9]])
    scaled = scale_scores(scores, "minmax", logit_scale=100.0)
    assert torch.allclose(scaled, torch.tensor([[-10.0, 10.0, 0.0], [-10.0, -10.0, 10.0]]), atol=1e-5)


def test_entropy_hand_computed():
    # two classes with logits 0 and ln 3: p = (1/4, 3/4); H = -(1/4 ln 1/4 + 3/4 ln 3/4)
    logits = torch.tensor([[0.0, math.log(3.0)], [0.0, 0.0]])
    expected = -(0.25 * math.log(0.25) + 0.75 * math.log(0.75))
    assert entropy_nats(logits)[0].item() == pytest.approx(expected, abs=1e-7)
    metric = MeanEntropy()
    metric.update(entropy_nats(logits))
    assert metric.compute().item() == pytest.approx((expected + math.log(2)) / 2, abs=1e-7)


def test_accuracies_on_hand_made_probabilities():
    probs = torch.tensor(
        [
            [0.7, 0.1, 0.1, 0.05, 0.05, 0.0],  # label 0: top-1 right
            [0.5, 0.2, 0.1, 0.1, 0.05, 0.05],  # label 1: 2nd -> top-5 only
            [0.05, 0.1, 0.15, 0.2, 0.0, 0.5],  # label 2: 3rd -> top-5 only
            [0.0, 0.01, 0.02, 0.1, 0.1, 0.77],  # label 0: last -> not in top-5
        ]
    )
    labels = torch.tensor([0, 1, 2, 0])
    metrics = build_classification_metrics(6)
    metrics.update(probs, labels)
    values = metrics.compute()
    assert values["top1"].item() == pytest.approx(1 / 4)
    assert values["top5"].item() == pytest.approx(3 / 4)
    # per-class recall: class 0 -> 1/2, classes 1, 2 -> 0; class 5 was only predicted (recall 0).
    # torchmetrics' macro mean runs over classes seen as a label or a prediction: 0.5 / 4.
    assert values["mean_per_class_acc"].item() == pytest.approx(0.5 / 4)


def test_ece_hand_computed():
    # confidences 0.9 (correct), 0.6 (wrong): bins are separate;
    # ECE = 1/2 * |0.9 - 1| + 1/2 * |0.6 - 0| = 0.35
    probs = torch.tensor([[0.9, 0.1], [0.6, 0.4]])
    labels = torch.tensor([0, 1])
    metrics = build_classification_metrics(2)
    metrics.update(probs, labels)
    assert metrics.compute()["ece"].item() == pytest.approx(0.35, abs=1e-6)


def test_unknown_scale_is_refused():
    with pytest.raises(ValueError, match="unknown entropy scale 'soft'"):
        scale_scores(torch.zeros(1, 2), "soft", 1.0)


def test_calibration_error_equals_torchmetrics_and_ignores_sample_order():
    from torchmetrics.classification import MulticlassCalibrationError

    from descbench.core.metrics import CalibrationError

    gen = torch.Generator().manual_seed(3)
    probs = torch.softmax(torch.randn(301, 7, generator=gen) * 3, dim=1)
    target = torch.randint(0, 7, (301,), generator=gen)
    ours, reference = CalibrationError(n_bins=15), MulticlassCalibrationError(7, n_bins=15, norm="l1")
    ours.update(probs, target)
    reference.update(probs, target)
    assert ours.compute().item() == pytest.approx(reference.compute().item(), abs=1e-6)
    # two "ranks" that saw the samples in another split and order: the same value to the last bit
    perm = torch.randperm(301, generator=gen)
    a, b = CalibrationError(n_bins=15), CalibrationError(n_bins=15)
    a.update(probs[perm[:150]], target[perm[:150]])
    b.update(probs[perm[150:]], target[perm[150:]])
    a.count += b.count
    a.correct += b.correct
    a.confidence += b.confidence
    assert a.compute().item() == ours.compute().item()


@pytest.mark.parametrize("classes", [3, 7, 40])
def test_count_accuracies_equal_torchmetrics(classes):
    # the per-class counting replaces MulticlassAccuracy: the same values on batches where some classes never
    # occur as a label, some only as a prediction, and top-5 is capped at the class count
    from torchmetrics.classification import MulticlassAccuracy

    from descbench.core.metrics import ClassAccuracy

    generator = torch.Generator().manual_seed(classes)
    ours = build_classification_metrics(classes)
    per_class = ClassAccuracy(classes, average="none")
    k = min(5, classes)
    reference = {
        "top1": MulticlassAccuracy(classes, top_k=1, average="micro"),
        "top5": MulticlassAccuracy(classes, top_k=k, average="micro"),
        "mean_per_class_acc": MulticlassAccuracy(classes, top_k=1, average="macro"),
        "none": MulticlassAccuracy(classes, average="none"),
    }
    for _ in range(3):
        probs = torch.rand(50, classes, generator=generator).softmax(dim=1)
        labels = torch.randint(0, max(1, classes - 2), (50,), generator=generator)  # the last classes never occur
        ours.update(probs, labels)
        per_class.update(probs, labels)
        for metric in reference.values():
            metric.update(probs, labels)
    values = ours.compute()
    for name in ("top1", "top5", "mean_per_class_acc"):
        assert values[name].item() == reference[name].compute().item(), name
    assert torch.equal(per_class.compute(), reference["none"].compute())


def test_metrics_read_the_same_values_from_a_shared_probs_summary():
    # the module hands every metric one Probs per batch (max and top-k computed once); the values are those of
    # the plain tensor, ties included (the first of equal maxima, as argmax)
    from descbench.core.metrics import ClassAccuracy, Probs

    generator = torch.Generator().manual_seed(3)
    probs = torch.rand(64, 9, generator=generator).softmax(dim=1)
    probs[:8, 2] = probs[:8, 6] = 1.0  # ties at the maximum: class 2 first
    labels = torch.randint(0, 9, (64,), generator=generator)
    labels[:4] = 6
    shared, plain = build_classification_metrics(9), build_classification_metrics(9)
    shared_class, plain_class = ClassAccuracy(9, average="none"), ClassAccuracy(9, average="none")
    summary = Probs(probs)
    shared.update(summary, labels), shared_class.update(summary, labels)
    plain.update(probs, labels), plain_class.update(probs, labels)
    assert summary.pred[:8].tolist() == [2] * 8 and torch.equal(summary.pred, probs.argmax(dim=1))
    assert torch.equal(summary.topk(5), probs.topk(5, dim=1).indices)
    for name, value in plain.compute().items():
        assert shared.compute()[name].item() == value.item(), name
    assert torch.equal(shared_class.compute(), plain_class.compute())
