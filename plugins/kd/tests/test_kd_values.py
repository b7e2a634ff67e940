"""Each KD loss against an independent computation of its formula (value and gradient), before
and after a state update; FIFO queue behaviour; options; single process with no process group."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

import vlkd_core
from vlkd_core.errors import UsageError

sys.path.insert(0, str(Path(__file__).parent))
from kd_reference import (fifo, initial_queue, l2n, ref_barlowtwins, ref_compress, ref_rkd,  # noqa: E402
                          ref_seed, ref_simreg, ref_simreg_l1, ref_simreg_smoothl1, ref_vicreg)

torch.set_num_threads(1)
B, D = 6, 5


def inputs(seed: int, b: int = B, d: int = D, scale: float = 1.0):
    gen = torch.Generator().manual_seed(seed)
    s = (torch.randn(b, d, generator=gen) * scale).requires_grad_(True)
    t = torch.randn(b, d, generator=gen) * scale + 0.5
    return s, t


def value(out):
    return vlkd_core.loss_value(out)


def build(name: str, student_dim: int = D, teacher_dim: int = D, **options):
    """A loss built as the engine builds it: with the widths it will be called with."""
    return vlkd_core.build_loss(name, widths={"student_dim": student_dim, "teacher_dim": teacher_dim},
                                **options)


def run_plugin(loss, s, t):
    s = s.detach().clone().requires_grad_(True)
    v = value(loss(s, t))
    v.backward()
    return v.detach(), s.grad


def run_reference(fn, s, t, *extra):
    s = s.detach().clone().requires_grad_(True)
    v = fn(s, t.detach(), *extra)
    v.backward()
    return v.detach(), s.grad


def assert_same(plugin, reference, atol=1e-5):
    (pv, pg), (rv, rg) = plugin, reference
    assert torch.allclose(pv, rv, atol=atol, rtol=1e-5), (pv, rv)
    assert torch.allclose(pg, rg, atol=atol, rtol=1e-4), (pg - rg).abs().max()


# --- stateless losses ---------------------------------------------------------------------------

STATELESS = [("simreg", {}, ref_simreg), ("simreg-l1", {}, ref_simreg_l1),
             ("simreg-smoothl1", {}, ref_simreg_smoothl1),
             ("vicreg", {}, ref_vicreg),
             ("vicreg", {"sim_coeff": 2.0, "std_coeff": 3.0, "cov_coeff": 0.5, "eps": 1e-2},
              lambda s, t: ref_vicreg(s, t, 2.0, 3.0, 0.5, 1e-2)),
             ("barlowtwins", {}, ref_barlowtwins),
             ("barlowtwins", {"lambd": 0.5}, lambda s, t: ref_barlowtwins(s, t, 0.5)),
             ("rkd", {}, ref_rkd),
             ("rkd", {"distance_weight": 0.3, "angle_weight": 0.0}, lambda s, t: ref_rkd(s, t, 0.3, 0.0))]


@pytest.mark.parametrize("name, options, reference", STATELESS)
@pytest.mark.parametrize("scale", [0.3, 3.0])  # small scale keeps smooth-L1 / hinges in both regimes
def test_stateless_loss_matches_formula(name, options, reference, scale):
    s, t = inputs(1, scale=scale)
    loss = vlkd_core.build_loss(name, **options)
    assert_same(run_plugin(loss, s, t), run_reference(reference, s, t))


def test_vicreg_and_barlowtwins_use_raw_features():
    s, t = inputs(2)
    for name in ("vicreg", "barlowtwins"):
        loss = vlkd_core.build_loss(name)
        assert not torch.allclose(value(loss(s, t)), value(loss(F.normalize(s, dim=1), F.normalize(t, dim=1))))


def test_rkd_accepts_different_widths():
    s, _ = inputs(3)
    t = torch.randn(B, 9)
    assert_same(run_plugin(vlkd_core.build_loss("rkd"), s, t), run_reference(ref_rkd, s, t))


# --- queue losses -------------------------------------------------------------------------------

def test_seed_matches_formula_fresh_and_after_enqueue():
    q = 7  # not a multiple of the batch
    loss = build("seed", queue_size=q)
    queue, ptr = initial_queue(q, D), 0
    for step in range(3):  # the third call wraps around
        s, t = inputs(10 + step)
        assert_same(run_plugin(loss, s, t), run_reference(ref_seed, s, t, queue))
        queue, ptr = fifo(queue, ptr, l2n(t))
        assert torch.allclose(loss.queue, queue, atol=1e-6) and int(loss.queue_ptr) == ptr


def test_seed_temperatures_are_used():
    s, t = inputs(4)
    loss = build("seed", queue_size=16, student_temp=0.2, teacher_temp=0.05)
    assert_same(run_plugin(loss, s, t),
                run_reference(ref_seed, s, t, initial_queue(16, D), 0.2, 0.05))


def test_compress_1q_matches_formula_fresh_and_after_enqueue():
    q = 10
    loss = build("compress-1q", queue_size=q, temperature=0.1)
    queue, ptr = initial_queue(q, D), 0
    for step in range(3):
        s, t = inputs(20 + step)
        assert_same(run_plugin(loss, s, t),
                    run_reference(lambda a, b: ref_compress(a, b, queue, queue, 0.1), s, t))
        queue, ptr = fifo(queue, ptr, l2n(t))
        assert torch.allclose(loss.queue, queue, atol=1e-6) and int(loss.queue_ptr) == ptr
    assert not hasattr(loss, "teacher_queue")


def test_compress_2q_matches_formula_fresh_and_after_enqueue():
    q = 9
    loss = build("compress-2q", queue_size=q)
    q_t, q_s, ptr = initial_queue(q, D), initial_queue(q, D), 0
    for step in range(3):
        s, t = inputs(30 + step)
        assert_same(run_plugin(loss, s, t),
                    run_reference(lambda a, b: ref_compress(a, b, q_s, q_t), s, t))
        q_t, _ = fifo(q_t, ptr, l2n(t))
        q_s, ptr = fifo(q_s, ptr, l2n(s.detach()))
        assert torch.allclose(loss.teacher_queue, q_t, atol=1e-6)
        assert torch.allclose(loss.student_queue, q_s, atol=1e-6) and int(loss.queue_ptr) == ptr
    assert not hasattr(loss, "queue")


def test_compress_2q_student_queue_may_have_its_own_width():
    loss = build("compress-2q", student_dim=3, teacher_dim=6, queue_size=8)
    assert loss.student_queue.shape == (8, 3) and loss.teacher_queue.shape == (8, 6)
    s, t = torch.randn(4, 3, requires_grad=True), torch.randn(4, 6)
    value(loss(s, t)).backward()
    assert loss.student_queue.shape == (8, 3) and loss.teacher_queue.shape == (8, 6)
    assert torch.allclose(loss.teacher_queue[4:], initial_queue(8, 6)[4:])  # untouched rows


@pytest.mark.parametrize("q, batches", [(5, [3, 3, 3]), (4, [6]), (4, [4, 9, 1]), (1, [2, 1])])
def test_queue_is_fifo_for_any_size(q, batches):
    loss = build("seed", 3, 3, queue_size=q)
    queue, ptr = initial_queue(q, 3), 0
    for i, n in enumerate(batches):
        s, t = torch.randn(n, 3), torch.randn(n, 3)
        loss(s, t)
        queue, ptr = fifo(queue, ptr, l2n(t))
        assert torch.allclose(loss.queue, queue, atol=1e-6), i
        assert int(loss.queue_ptr) == ptr


def test_eval_mode_does_not_update_the_queue():
    loss = build("seed", queue_size=8)
    s, t = inputs(5)
    loss.eval()
    first = value(loss(s, t))
    assert torch.allclose(loss.queue, initial_queue(8, D)) and int(loss.queue_ptr) == 0
    assert torch.equal(value(loss(s, t)), first)


QUEUES = [("seed", {"queue": "teacher_dim"}), ("compress-1q", {"queue": "teacher_dim"}),
          ("compress-2q", {"teacher_queue": "teacher_dim", "student_queue": "student_dim"})]


@pytest.mark.parametrize("name, buffers", QUEUES)
def test_fresh_queues_have_their_final_shape_and_seeded_rows(name, buffers):
    widths = {"student_dim": 3, "teacher_dim": 4}
    loss = build(name, **widths, queue_size=11)
    assert set(loss.state_dict()) == set(buffers) | {"queue_ptr"}
    for buffer, width in buffers.items():
        assert torch.equal(getattr(loss, buffer), initial_queue(11, widths[width])), buffer
    assert int(loss.queue_ptr) == 0


@pytest.mark.parametrize("name, buffers", QUEUES)
def test_state_dict_round_trip_into_a_fresh_loss(name, buffers):
    used = build(name, queue_size=11)
    for step in range(2):
        used(*inputs(40 + step))
    fresh = build(name, queue_size=11)
    fresh.load_state_dict(used.state_dict())
    for key, tensor in used.state_dict().items():
        assert torch.equal(tensor, fresh.state_dict()[key]), key
    s, t = inputs(50)
    assert torch.equal(value(used(s, t)), value(fresh(s, t)))


def test_fresh_state_loaded_into_a_used_loss_starts_it_afresh():
    blank = build("seed", queue_size=4).state_dict()
    used = build("seed", queue_size=4)
    used(*inputs(6))
    used.load_state_dict(blank)
    assert torch.equal(used.queue, initial_queue(4, D)) and int(used.queue_ptr) == 0


@pytest.mark.parametrize("name, buffers", QUEUES)
def test_other_widths_are_refused_on_load(name, buffers):
    saved = build(name, student_dim=D + 1, teacher_dim=D + 1, queue_size=4).state_dict()
    with pytest.raises(RuntimeError, match=f"size mismatch for {next(iter(buffers))}"):
        build(name, queue_size=4).load_state_dict(saved)


def test_mismatched_queue_size_fails_on_load():
    a, b = build("seed", queue_size=4), build("seed", queue_size=5)
    a(*inputs(7))
    with pytest.raises(RuntimeError, match="queue"):
        b.load_state_dict(a.state_dict())


@pytest.mark.parametrize("name, student_dim, teacher_dim", [("seed", D, D + 2), ("compress-1q", D, D + 2),
                                                            ("compress-2q", D + 1, D), ("compress-2q", D, D + 1)])
def test_features_of_another_width_are_a_one_line_usage_error(name, student_dim, teacher_dim):
    loss = build(name, student_dim=student_dim, teacher_dim=teacher_dim, queue_size=4)
    with pytest.raises(UsageError, match=f"loss '{name}': features are {D}-d") as err:
        loss(*inputs(8))
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("name, width", [("seed", "teacher_dim"), ("compress-1q", "teacher_dim"),
                                         ("compress-2q", "student_dim")])
def test_built_without_widths_is_a_usage_error(name, width):
    with pytest.raises(UsageError, match=width):
        vlkd_core.build_loss(name, queue_size=4)


# --- options and errors -------------------------------------------------------------------------

@pytest.mark.parametrize("name, options", [("seed", {"queue_size": 0}), ("seed", {"student_temp": 0}),
                                           ("compress-1q", {"temperature": -1.0})])
def test_bad_options_are_usage_errors(name, options):
    with pytest.raises(UsageError):
        build(name, **options)


def test_width_mismatch_is_a_usage_error():
    with pytest.raises(UsageError, match="simreg"):
        vlkd_core.build_loss("simreg")(torch.randn(4, 3), torch.randn(4, 5))


def test_teacher_gets_no_gradient():
    for name in ("simreg", "vicreg", "barlowtwins", "rkd", "seed", "compress-2q"):
        s, t = inputs(8)
        t.requires_grad_(True)
        value(build(name, **({"queue_size": 8} if name in ("seed", "compress-2q") else {}))(s, t)).backward()
        assert t.grad is None, name
