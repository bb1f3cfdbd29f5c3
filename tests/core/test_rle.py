"""Brush RLE (protocol §5.6): exact vectors from the JS reference, round trips, tolerant decoding."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence

import numpy as np
import pytest

from labelzoo.results import ResultError, decode, encode, mask_to_rle, rle_to_mask

MAX = 65536


def reference_encode(
    values: Sequence[int], word: int = 8, sizes: Sequence[int] = (3, 4, 8, 16), *, js_bug: bool = False
) -> list[int]:
    """A slow, literal transcription of §5.6 "Encoder behaviour of the JS reference", value by value.

    ``js_bug=True`` reproduces the upstream encoder dropping the last value of a final run of
    65536·m + 1 values; other word and run sizes make streams with other headers for the decoder.
    """
    fields: list[str] = []
    limits = [1 << s for s in sizes]

    def put(value: int, nbits: int) -> None:
        fields.append(format(value, f"0{nbits}b"))

    def chunk(kind: int, count: int) -> None:
        size_class = next(t for t, limit in enumerate(limits) if count - 1 < limit)
        put(kind, 1)
        put(size_class, 2)
        put(count - 1, sizes[size_class])

    def repeat(count: int, value: int) -> None:
        chunk(1, count)
        put(value, word)

    def literal(block: list[int]) -> None:
        chunk(0, len(block))
        for value in block:
            put(value, word)

    put(len(values), 32)
    put(word - 1, 5)
    for size in sizes:
        put(size - 1, 4)
    current, extra, pending, tail = values[0], 0, [], True
    for i in range(1, len(values)):
        if values[i] != current:
            if extra > 0:
                repeat(extra + 1, current)
                extra = 0
            else:
                pending.append(current)
                if len(pending) == limits[-1]:
                    literal(pending)
                    pending = []
            current = values[i]
        else:
            if pending:
                literal(pending)
                pending = []
            extra += 1
            if extra == limits[-1]:
                repeat(limits[-1], current)
                extra = 0
                tail = i < len(values) - 1
    if pending:
        literal([*pending, current])
    elif tail or not js_bug:
        repeat(extra + 1, current)
    bits = "".join(fields)
    bits += "0" * (-len(bits) % 8)
    return [int(bits[i : i + 8], 2) for i in range(0, len(bits), 8)]


def bits_to_bytes(bits: str) -> list[int]:
    bits = bits.replace(" ", "")
    bits += "0" * (-len(bits) % 8)
    return [int(bits[i : i + 8], 2) for i in range(0, len(bits), 8)]


# --- exact vectors ------------------------------------------------------------------------------

SPEC_MASK_STREAM = [0, 0, 0, 24, 57, 27, 252, 96, 23, 255, 227, 0]


def test_spec_mask_vector() -> None:
    mask = np.array([[0, 255, 255], [255, 255, 0]], np.uint8)
    assert mask_to_rle(mask) == SPEC_MASK_STREAM
    assert encode([0] * 4 + [255] * 16 + [0] * 4) == SPEC_MASK_STREAM
    np.testing.assert_array_equal(rle_to_mask(SPEC_MASK_STREAM, 3, 2), mask != 0)


@pytest.mark.parametrize(
    ("values", "stream"),
    [
        ([1, 2, 3, 3, 3], [0, 0, 0, 5, 57, 27, 248, 32, 32, 81, 1, 128]),
        ([5], [0, 0, 0, 1, 57, 27, 252, 0, 160]),
        ([7, 7], [0, 0, 0, 2, 57, 27, 252, 32, 224]),
        # Outputs of the real @thi.ng/rle-pack 2.1.43 encoder (the 2.x line Label Studio depends on).
        (
            [1, 2, 3] + [9] * MAX + [5, 6],
            [0, 1, 0, 5, 57, 27, 248, 64, 32, 64, 127, 255, 252, 36, 16, 80, 96],
        ),
        ([9] * MAX, [0, 1, 0, 0, 57, 27, 255, 255, 255, 9]),
        ([9] * (2 * MAX) + [4], [0, 2, 0, 1, 57, 27, 255, 255, 255, 9, 255, 255, 225, 48, 2, 0]),
    ],
)
def test_js_reference_vectors(values: list[int], stream: list[int]) -> None:
    assert encode(values) == stream
    assert encode(np.array(values, np.uint8)) == stream
    assert encode(bytes(values)) == stream
    np.testing.assert_array_equal(decode(stream), values)


def _circle_rgba() -> np.ndarray:
    yy, xx = np.mgrid[:23, :37]
    return np.repeat((((xx - 18) ** 2 + (yy - 11) ** 2) <= 64).astype(np.uint8) * 255, 4)


@pytest.mark.parametrize(
    ("values", "digest"),
    [
        (  # literal blocks longer than 65536, then a run of 2
            np.concatenate([np.arange(2 * MAX + 3) % 2, [7, 7]]),
            "91d88ada6dc5ee21acf7ea3c71a4dd992005d8bf61dd5cbd9db4f26fec301aa1",
        ),
        (_circle_rgba(), "e07a552078f3728229ffc5fe281548ed7fa421e6e43c668a48b047ba2ce4baf1"),
        (
            np.repeat(np.arange(3000) % 3, np.arange(3000) % 17 + 1),
            "cfe7db6fad22eceb096e0eb1c2029256a77c6adccc8959d0c6d2e0101a426263",
        ),
    ],
)
def test_js_reference_digests(values: np.ndarray, digest: str) -> None:
    """SHA-256 of what the real JS encoder produced for these (too long to spell out) inputs."""
    stream = encode(values.astype(np.uint8))
    assert hashlib.sha256(bytes(stream)).hexdigest() == digest
    np.testing.assert_array_equal(decode(stream), values)


def test_literal_block_bit_by_bit() -> None:
    bits = (
        "00000000 00000000 00000000 00000010"  # num = 2
        "00111"  # wordSize - 1 = 7
        "0010 0011 0111 1111"  # rleSizes - 1 = 2, 3, 7, 15
        "0 00 001"  # literal block, size class 0, count - 1 = 1
        "00000001 00000010"  # the words 1 and 2; then 5 padding zeros
    )
    assert bits_to_bytes(bits) == [0, 0, 0, 2, 57, 27, 248, 32, 32, 64]
    assert encode([1, 2]) == [0, 0, 0, 2, 57, 27, 248, 32, 32, 64]
    np.testing.assert_array_equal(decode([0, 0, 0, 2, 57, 27, 248, 32, 32, 64]), [1, 2])


def test_sdk_stream_with_trailing_zero_byte_decodes() -> None:
    np.testing.assert_array_equal(decode([*SPEC_MASK_STREAM, 0]), [0] * 4 + [255] * 16 + [0] * 4)
    np.testing.assert_array_equal(rle_to_mask([*SPEC_MASK_STREAM, 0], 3, 2), [[0, 1, 1], [1, 1, 0]])


def test_empty_input_is_header_only() -> None:
    assert encode([]) == [0, 0, 0, 0, 57, 27, 248]
    assert decode(encode([])).size == 0


# --- agreement with the reference behaviour and round trips -------------------------------------


def test_matches_reference_encoder_on_random_vectors() -> None:
    rng = np.random.default_rng(7)
    for _ in range(300):
        values = rng.integers(0, int(rng.integers(1, 5)), int(rng.integers(1, 300)), dtype=np.uint8)
        assert encode(values) == reference_encode(values.tolist())
        np.testing.assert_array_equal(decode(encode(values)), values)


@pytest.mark.parametrize("length", [MAX - 1, MAX, MAX + 1, MAX + 2, 2 * MAX, 2 * MAX + 1, 3 * MAX + 1])
@pytest.mark.parametrize(("before", "after"), [([], []), ([1, 2, 3], []), ([], [4]), ([1, 2], [5, 6])])
def test_long_runs(length: int, before: list[int], after: list[int]) -> None:
    values = np.concatenate([before, np.full(length, 9), after]).astype(np.uint8)
    stream = encode(values)
    np.testing.assert_array_equal(decode(stream), values)
    if length % MAX != 1 or after:  # elsewhere the fix for the upstream bug adds a chunk
        assert stream == reference_encode(values.tolist(), js_bug=True)
    assert stream == reference_encode(values.tolist())


@pytest.mark.parametrize("length", [MAX - 1, MAX, MAX + 1, 2 * MAX + 3])
def test_long_literal_blocks(length: int) -> None:
    values = (np.arange(length) % 2).astype(np.uint8)
    for tail in ([], [7], [7, 7]):
        data = np.concatenate([values, tail]).astype(np.uint8)
        stream = encode(data)
        assert stream == reference_encode(data.tolist())
        np.testing.assert_array_equal(decode(stream), data)


def test_final_run_of_65536m_plus_1_keeps_its_last_value() -> None:
    values = [3] * (2 * MAX + 1)
    np.testing.assert_array_equal(decode(encode(values)), values)
    # The JS encoder drops that value; its stream must still decode, with a zero in its place.
    buggy = reference_encode(values, js_bug=True)
    assert buggy == [0, 2, 0, 1, 57, 27, 255, 255, 255, 3, 255, 255, 224, 96]
    np.testing.assert_array_equal(decode(buggy), [3] * (2 * MAX) + [0])
    # The real JS output for a run of 65537 nines.
    np.testing.assert_array_equal(decode([0, 1, 0, 1, 57, 27, 255, 255, 255, 9]), [9] * MAX + [0])


@pytest.mark.parametrize("shape", [(1, 1), (23, 37), (3, 5), (13, 7), (65, 64), (2, 1001)])
def test_random_masks_round_trip(shape: tuple[int, int]) -> None:
    rng = np.random.default_rng(shape[0] * 1000 + shape[1])
    for density in (0.0, 0.1, 0.5, 1.0):
        mask = rng.random(shape) < density
        height, width = shape
        np.testing.assert_array_equal(rle_to_mask(mask_to_rle(mask), width, height), mask)


def test_mask_dtypes_give_the_same_stream() -> None:
    mask = np.zeros((5, 6), bool)
    mask[1:4, 2:5] = True
    expected = mask_to_rle(mask)
    assert mask_to_rle(mask.astype(np.uint8)) == expected
    assert mask_to_rle(mask.astype(np.uint8) * 255) == expected
    assert mask_to_rle(mask.astype(np.int64) * 7) == expected
    assert decode(expected).reshape(5, 6, 4)[2, 3].tolist() == [255, 255, 255, 255]


def test_large_mask_is_fast_and_exact() -> None:
    height, width = 1080, 1920
    yy, xx = np.mgrid[:height, :width]
    mask = ((xx - 500) ** 2 + (yy - 400) ** 2 < 200**2) | (
        (xx > 1200) & (xx < 1700) & (yy > 100) & (yy < 900)
    )
    started = time.perf_counter()
    stream = mask_to_rle(mask)
    encoded = time.perf_counter()
    back = rle_to_mask(stream, width, height)
    decoded = time.perf_counter()
    np.testing.assert_array_equal(back, mask)
    # Measured ~0.02 s each; the bound only catches a per-value Python loop (tens of seconds).
    assert encoded - started < 3.0
    assert decoded - encoded < 3.0


# --- tolerant decoding ---------------------------------------------------------------------------


def _assert_prefix_then_zeros(decoded: np.ndarray, original: np.ndarray) -> None:
    assert decoded.shape == original.shape
    differs = np.flatnonzero(decoded != original)
    if differs.size:
        assert not decoded[differs[0] :].any()


@pytest.mark.parametrize("cut", [8, 9, 10, 20, 33, 60])
def test_truncated_stream_decodes_with_zeros(cut: int) -> None:
    rng = np.random.default_rng(cut)
    values = np.repeat(rng.integers(1, 256, 40), rng.integers(1, 4, 40)).astype(np.uint8)
    stream = encode(values)
    assert len(stream) > cut
    decoded = decode(stream[:cut])
    _assert_prefix_then_zeros(decoded, values)
    assert not np.array_equal(decoded, values)


def test_truncated_literal_block_keeps_its_complete_words() -> None:
    stream = encode([1, 2, 3, 4, 5, 5])  # literal block 1..4, then a repeat of two 5s
    # Header (53 bits) and the block header (6 bits) end in byte 7; keep words 1 and 2 whole.
    np.testing.assert_array_equal(decode(stream[:10]), [1, 2, 0, 0, 0, 0])


def test_data_after_num_values_is_ignored() -> None:
    np.testing.assert_array_equal(decode([*encode([4, 4, 4]), 255, 255, 255]), [4, 4, 4])
    # A chunk claiming more values than the header's num: a repeat of 5 in a 3-value stream.
    stream = bits_to_bytes("0" * 30 + "11" + "00111" + "0010 0011 0111 1111" + "1 00 100" + "00000110")
    np.testing.assert_array_equal(decode(stream), [6, 6, 6])


@pytest.mark.parametrize(("word", "sizes"), [(4, (2, 3, 5, 7)), (12, (1, 2, 3, 9)), (8, (4, 4, 6, 8))])
def test_header_parameters_are_read_from_the_stream(word: int, sizes: tuple[int, ...]) -> None:
    rng = np.random.default_rng(word)
    values = np.repeat(rng.integers(0, 1 << word, 300), rng.integers(1, 40, 300))
    decoded = decode(reference_encode(values.tolist(), word, sizes))
    np.testing.assert_array_equal(decoded, values)
    assert decoded.dtype == (np.uint8 if word <= 8 else np.uint16)


# --- errors --------------------------------------------------------------------------------------


@pytest.mark.parametrize("values", [[256], [-1], [1.5], [[1, 2]], "abc"])
def test_encode_rejects_non_bytes(values: object) -> None:
    with pytest.raises(ResultError):
        encode(values)  # type: ignore[arg-type]


def test_decode_errors() -> None:
    with pytest.raises(ValueError, match="too short"):
        decode([0, 0, 0, 24, 57, 27])
    with pytest.raises(ValueError, match=r"0\.\.255"):
        decode([0, 0, 0, 24, 57, 27, 252, 300])
    with pytest.raises(ValueError, match="more than the 23 expected"):
        decode(SPEC_MASK_STREAM, max_values=23)


def test_rle_to_mask_length_mismatch() -> None:
    with pytest.raises(ValueError, match="more than the 20 expected"):
        rle_to_mask(SPEC_MASK_STREAM, 5, 1)
    # Too short: the missing pixels are background.
    top = np.array([[1, 0, 1, 1]], bool)
    mask = rle_to_mask(mask_to_rle(top), 4, 3)
    np.testing.assert_array_equal(mask, np.vstack([top, np.zeros((2, 4), bool)]))
    with pytest.raises(ValueError, match="positive"):
        rle_to_mask(SPEC_MASK_STREAM, 0, 2)


def test_only_alpha_decides_membership() -> None:
    rgba = [255, 255, 255, 0, 0, 0, 0, 255, 1, 2, 3, 1]
    np.testing.assert_array_equal(rle_to_mask(encode(rgba), 3, 1), [[False, True, True]])


@pytest.mark.parametrize(
    "mask",
    [np.zeros((2, 2), np.float32), np.zeros((2, 2, 4), bool), np.zeros((0, 3), bool), np.zeros(4, bool)],
)
def test_mask_to_rle_rejects_bad_masks(mask: np.ndarray) -> None:
    with pytest.raises(ValueError, match="mask"):
        mask_to_rle(mask)
