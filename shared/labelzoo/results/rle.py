"""Label Studio brush RLE: the ``@thi.ng/rle-pack`` bitstream (protocol §5.6, pitfall P14).

Stream layout, bits packed MSB-first and the last byte zero-padded:

* header: ``num`` (32 bits), ``wordSize - 1`` (5 bits), then ``rleSizes[k] - 1`` (4 bits each, k = 0..3);
* chunks until ``num`` values are produced: kind (1 bit: 1 = repeat, 0 = literal block), size class
  ``t`` (2 bits), ``count - 1`` (``rleSizes[t]`` bits), then one word (repeat) or ``count`` words
  (literal block).

:func:`encode` reproduces the JS reference encoder that the Label Studio editor uses byte for byte
(wordSize 8, rleSizes ``[3, 4, 8, 16]``), except that it always emits the trailing value the JS encoder
drops after a final run of ``65536·m + 1`` values. Working on runs, that encoder's output is:

* a run of ``L`` equal values gives ``(L - 1) // 65536`` repeats of 65536, then its remaining ``r``
  values: a repeat of ``r`` when ``r >= 2``, or a single *literal* value when ``r == 1``;
* consecutive literal values form literal blocks of at most 65536 values;
* a literal value that ends the stream and would start a new block becomes a repeat of count 1.

Both directions work on whole runs and chunks with numpy, so a 1920×1080 mask (8.3 M values) takes
tens of milliseconds; only the decoder walks the chunks one by one.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from labelzoo.results.errors import ResultError

WORD_SIZE = 8
RLE_SIZES = (3, 4, 8, 16)
MAX_COUNT = 1 << RLE_SIZES[-1]  # the longest run or literal block, 65536
_HEADER_BITS = 32 + 5 + 4 * 4
_MAX_NUM = (1 << 32) - 1

Values = bytes | bytearray | memoryview | np.ndarray | Sequence[int]


def encode(values: Values) -> list[int]:
    """Encode byte values (0..255) as a Label Studio RLE stream (a list of byte values).

    An empty input gives just the header, which decodes to no values.
    """
    data = _as_bytes_array(values, "values")
    if data.size > _MAX_NUM:
        raise ResultError(f"RLE can hold at most {_MAX_NUM} values, got {data.size}")
    header_values = np.array([data.size, WORD_SIZE - 1, *(s - 1 for s in RLE_SIZES)], np.uint64)
    header_bits = np.array([32, 5, 4, 4, 4, 4], np.int64)
    if data.size == 0:
        return _pack(header_values, header_bits).tolist()

    # Runs of equal values, each cut into repeats of MAX_COUNT plus a remainder of 1..MAX_COUNT values.
    starts = np.flatnonzero(data[1:] != data[:-1]) + 1
    lengths = np.diff(starts, prepend=0, append=data.size)
    run_values = data[np.concatenate(([0], starts))]
    full = (lengths - 1) // MAX_COUNT
    rest = lengths - full * MAX_COUNT
    # One "item" per emitted repeat or per literal value, in stream order.
    per_run = full + 1
    last = np.cumsum(per_run) - 1
    value = np.repeat(run_values, per_run)
    count = np.full(value.size, MAX_COUNT, np.int64)
    count[last] = rest
    literal = np.zeros(value.size, bool)
    literal[last] = rest == 1

    # Literal values group into blocks of MAX_COUNT counted from the first literal after a repeat.
    index = np.arange(value.size)
    previous_repeat = np.maximum.accumulate(np.where(literal, -1, index))
    next_repeat = np.minimum.accumulate(np.where(literal, value.size, index)[::-1])[::-1]
    block_start = literal & ((index - previous_repeat - 1) % MAX_COUNT == 0)
    count[block_start] = np.minimum(next_repeat[block_start] - index[block_start], MAX_COUNT)
    if block_start[-1]:
        literal[-1] = False  # a lone trailing value is written as a repeat of 1 (same count, other kind)

    has_header = ~literal | block_start
    header_count = count[has_header] - 1
    size_class = (header_count >= 1 << RLE_SIZES[0]).astype(np.int64)
    size_class += header_count >= 1 << RLE_SIZES[1]
    size_class += header_count >= 1 << RLE_SIZES[2]
    size_bits = np.array(RLE_SIZES, np.int64)[size_class]
    kind = (~literal[has_header]).astype(np.int64)
    chunk_header = (((kind << 2) | size_class) << size_bits) | header_count

    # Interleave: each item's word, preceded by its chunk header where it opens a chunk.
    word_pos = index + np.cumsum(has_header)
    n_fields = value.size + int(has_header.sum())
    field_values = np.empty(n_fields, np.uint64)
    field_bits = np.empty(n_fields, np.int64)
    field_values[word_pos] = value
    field_bits[word_pos] = WORD_SIZE
    header_pos = word_pos[has_header] - 1
    field_values[header_pos] = chunk_header
    field_bits[header_pos] = 3 + size_bits
    fields = np.concatenate((header_values, field_values))
    bits = np.concatenate((header_bits, field_bits))
    return _pack(fields, bits).tolist()


def _pack(values: np.ndarray, bits: np.ndarray) -> np.ndarray:
    """Concatenate bit fields MSB-first into bytes; fields have <= 25 bits or start on a byte boundary."""
    ends = np.cumsum(bits)
    starts = ends - bits
    n_bytes = int(ends[-1] + 7) // 8
    # Left-align each field in a 32-bit window that starts at its first byte; fields never share a bit,
    # so adding the windows' bytes per output byte is the same as OR-ing them.
    window = values << (32 - (starts & 7) - bits).astype(np.uint64)
    first = starts >> 3
    out = np.zeros(n_bytes + 3, np.float64)
    for lane in range(4):
        lane_bytes = (window >> np.uint64(24 - 8 * lane)) & np.uint64(0xFF)
        out += np.bincount(first + lane, weights=lane_bytes.astype(np.float64), minlength=out.size)
    return out[:n_bytes].astype(np.uint8)


def decode(data: Values, *, max_values: int | None = None) -> np.ndarray:
    """Decode an RLE stream into its values (uint8 for word sizes <= 8, wider dtypes above).

    The word size and run sizes are read from the header. Data that ends before ``num`` values were
    produced leaves the rest as zeros (Label Studio may hold such streams, see §5.6); bytes after the
    ``num``-th value are ignored. ``max_values`` rejects a header claiming more values before any
    memory is allocated for them.
    """
    raw = _as_bytes_array(data, "RLE data").tobytes()
    available = 8 * len(raw)
    if available < _HEADER_BITS:
        raise ResultError(f"RLE data has {len(raw)} bytes, too short for its {_HEADER_BITS}-bit header")
    header = int.from_bytes(raw[:8].ljust(8, b"\0"), "big")
    num = header >> 32
    word = ((header >> 27) & 31) + 1
    sizes = [((header >> (23 - 4 * k)) & 15) + 1 for k in range(4)]
    if max_values is not None and num > max_values:
        raise ResultError(f"RLE stream holds {num} values, more than the {max_values} expected")
    out = np.zeros(num, np.uint8 if word <= 8 else np.uint16 if word <= 16 else np.uint32)
    # A chunk's header and repeat word (<= 3 + 16 + 32 bits) fit in the 64 bits read at its first byte.
    # Reads past the end see zero padding; comparing with `available` decides which bits were real.
    buf = raw + bytes(8)
    pos, filled = _HEADER_BITS, 0
    while filled < num:
        start = pos >> 3
        window = int.from_bytes(buf[start : start + 8], "big")
        left = 64 - (pos & 7) - 3  # bits of `window` after the kind and size-class bits
        repeat = (window >> (left + 2)) & 1
        size = sizes[(window >> left) & 3]
        left -= size
        pos += 3 + size
        if pos > available:
            break
        count = min(((window >> left) & ((1 << size) - 1)) + 1, num - filled)
        if repeat:
            pos += word
            if pos > available:
                break
            value = (window >> (left - word)) & ((1 << word) - 1)
            if value:
                out[filled : filled + count] = value
        else:
            complete = min(count, (available - pos) // word)
            out[filled : filled + complete] = _read_words(buf, pos, complete, word)
            pos += complete * word
            if complete < count:
                break
        filled += count
    return out


def _read_words(buf: bytes, pos: int, n: int, word: int) -> np.ndarray:
    """``n`` consecutive ``word``-bit values starting at bit offset ``pos``."""
    start = pos >> 3
    skip = pos & 7
    chunk = np.frombuffer(buf, np.uint8, count=(skip + n * word + 7) // 8, offset=start)
    bits = np.unpackbits(chunk)[skip : skip + n * word].reshape(n, word)
    return bits @ (np.int64(1) << np.arange(word - 1, -1, -1, dtype=np.int64))


def mask_to_rle(mask: np.ndarray) -> list[int]:
    """Encode an (H, W) mask as Label Studio brush RLE: RGBA rows, every channel 255 inside the mask.

    ``mask`` may be bool or integer (any non-zero value is inside). Float masks are rejected, since
    probabilities and logits need a threshold the caller chooses (e.g. ``mask > 0.5``).
    """
    pixels = _as_mask(mask)
    return encode(np.repeat(pixels.view(np.uint8) * np.uint8(255), 4))


def rle_to_mask(rle: Values, width: int, height: int) -> np.ndarray:
    """Decode brush RLE into an (height, width) bool mask: a pixel is inside iff its alpha is non-zero.

    A stream with fewer than ``width·height·4`` values is padded with background; one with more is an
    error, as in the editor.
    """
    if (
        not (isinstance(width, int | np.integer) and isinstance(height, int | np.integer))
        or min(width, height) < 1
    ):
        raise ResultError(f"mask size must be positive integers, got width={width!r}, height={height!r}")
    expected = width * height * 4
    values = decode(rle, max_values=expected)
    if values.size < expected:
        values = np.concatenate((values, np.zeros(expected - values.size, values.dtype)))
    return values.reshape(height, width, 4)[:, :, 3] != 0


def _as_mask(mask: np.ndarray) -> np.ndarray:
    """Validate a 2-D bool/integer mask and return it as a C-contiguous bool array."""
    arr = np.asarray(mask)
    if arr.ndim != 2 or arr.size == 0:
        raise ResultError(f"a mask must be a non-empty 2-D (height, width) array, got shape {arr.shape}")
    if arr.dtype != np.bool_ and not np.issubdtype(arr.dtype, np.integer):
        raise ResultError(f"a mask must be bool or integer, got {arr.dtype}; threshold it first (mask > 0.5)")
    return np.ascontiguousarray(arr != 0)


def _as_bytes_array(values: Values, what: str) -> np.ndarray:
    """A 1-D uint8 array of ``values``, which must be integers in 0..255."""
    if isinstance(values, bytes | bytearray | memoryview):
        return np.frombuffer(values, np.uint8)
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise ResultError(f"{what} must be one-dimensional, got shape {arr.shape}")
    if arr.dtype == np.uint8:
        return arr
    if arr.size == 0:
        return np.zeros(0, np.uint8)
    if not np.issubdtype(arr.dtype, np.integer):
        raise ResultError(f"{what} must be integers 0..255, got dtype {arr.dtype}")
    low, high = int(arr.min()), int(arr.max())
    if low < 0 or high > 255:
        raise ResultError(f"{what} must be integers 0..255, found {low if low < 0 else high}")
    return arr.astype(np.uint8)
