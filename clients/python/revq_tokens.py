"""Reader for revq token ids: the binary token stream (docs/token-stream.md), its JSON form and
int .npy files of shape (N, T). Needs only numpy.

Every check of the reference reader (shared/src/format/token-stream.ts) is made in the same
order, and a failure raises TokenFormatError whose ``code`` is the one the TypeScript reader
gives for the same input, so errors can be compared or shown alike.

A dataset encode job's output folder (``revq tokenize --dataset ID -o DIR``: its shards'
token streams, ``manifest.json`` and ``records.json``) opens with ``open_dataset``, which
memory-maps every shard and reads records across them in dataset order.
"""

from __future__ import annotations

import bisect
import json
import os
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

__all__ = [
    "TokenDataset",
    "TokenFormatError",
    "TokenHeader",
    "TokenStream",
    "open_dataset",
    "open_tokens",
    "read_token_json",
    "read_token_npy",
]

MAGIC = b"RVQT"
VERSION = 1
HEADER_BYTES = 64
MAX_TOKENS_PER_RECORD = 65536
MIN_CODES_PER_GROUP = 2
MAX_CODES_PER_GROUP = 1 << 24
JSON_MAX_TOKENS = 1 << 22
_RECORD_CRC_BYTES = 4
# Ids decoded per step when reading many records: bounds the temporary arrays to a few MB.
_IDS_PER_CHUNK = 1 << 20


class TokenFormatError(ValueError):
    """Bad input. ``code`` is the TypeScript FormatError code for the same problem."""

    def __init__(self, code: str, message: str, format: str = "token-stream"):
        super().__init__(f"{format}: {message}")
        self.code = code
        self.message = message
        self.format = format


@dataclass(frozen=True)
class TokenHeader:
    """The fields of a token stream header (the JSON form carries the same ones)."""

    tokenizer_hash: str  # sha256 of the tokenizer manifest, 64 lowercase hex digits
    tokens_per_record: int  # T
    codes_per_group: int  # K: every id is in [0, K)
    groups: int  # G: token t uses codebook group t mod G
    bits_per_token: int  # ceil(log2 K)
    record_count: int  # N

    @property
    def payload_bytes(self) -> int:
        """Bytes of packed ids in one record: ceil(T * b / 8)."""
        return (self.tokens_per_record * self.bits_per_token + 7) // 8

    @property
    def stride(self) -> int:
        """Bytes of one record: packed ids then a CRC-32."""
        return self.payload_bytes + _RECORD_CRC_BYTES


# ---------------------------------------------------------------------------------------------
# The binary token stream


class TokenStream:
    """A checked token stream. Records are unpacked (and their CRCs checked) only when read, so
    a memory-mapped file of any size opens at once."""

    def __init__(self, data: np.ndarray, header: TokenHeader):
        self._data = data  # uint8, the whole stream (maybe a memmap)
        self.header = header

    tokenizer_hash = property(lambda self: self.header.tokenizer_hash)
    tokens_per_record = property(lambda self: self.header.tokens_per_record)
    codes_per_group = property(lambda self: self.header.codes_per_group)
    groups = property(lambda self: self.header.groups)
    bits_per_token = property(lambda self: self.header.bits_per_token)
    record_count = property(lambda self: self.header.record_count)

    @property
    def shape(self) -> tuple[int, int]:
        return (self.header.record_count, self.header.tokens_per_record)

    def __len__(self) -> int:
        return self.header.record_count

    def __getitem__(self, index: int) -> np.ndarray:
        """Record ``index`` (negative counts from the end) as T uint32 ids."""
        n = self.header.record_count
        if not isinstance(index, (int, np.integer)) or not -n <= index < n:
            raise IndexError(f"record index {index} is outside [0, {n}) of this stream")
        index = int(index) % n
        return self._decode(index, index + 1)[0]

    def records(self) -> Iterator[np.ndarray]:
        """Every record in order, each T uint32 ids, decoded a chunk at a time."""
        for start, stop in self._chunks():
            yield from self._decode(start, stop)

    def to_array(self, dtype=np.uint32) -> np.ndarray:
        """All ids as an (N, T) array; ``np.int64`` suits torch embeddings."""
        out = np.empty(self.shape, dtype=dtype)
        for start, stop in self._chunks():
            out[start:stop] = self._decode(start, stop)
        return out

    def _chunks(self) -> Iterator[tuple[int, int]]:
        step = max(1, _IDS_PER_CHUNK // self.header.tokens_per_record)
        for start in range(0, self.header.record_count, step):
            yield start, min(start + step, self.header.record_count)

    def _decode(self, start: int, stop: int) -> np.ndarray:
        """Records [start, stop) as (stop - start, T) uint32, checked in the reference's order:
        for each record its CRC, then its padding bits, then its ids against K."""
        h = self.header
        rows = self._data[HEADER_BYTES + start * h.stride : HEADER_BYTES + stop * h.stride]
        rows = rows.reshape(stop - start, h.stride)
        payload = rows[:, : h.payload_bytes]
        crc_ok = _record_crcs(payload, start) == rows[:, h.payload_bytes :].copy().view("<u4")[:, 0]
        padding_ok = _padding_is_zero(payload, h.tokens_per_record, h.bits_per_token)
        ids = _unpack(payload, h.tokens_per_record, h.bits_per_token)
        ids_ok = (ids < h.codes_per_group).all(axis=1)
        bad = np.flatnonzero(~(crc_ok & padding_ok & ids_ok))
        if bad.size:
            r = int(bad[0])
            _raise_record_error(start + r, crc_ok[r], padding_ok[r], ids[r], h.codes_per_group)
        return ids


def open_tokens(source: str | os.PathLike | bytes | bytearray | memoryview) -> TokenStream:
    """Opens a token stream from a path (memory-mapped) or from bytes, checking its header and
    length. Record CRCs and ids are checked as records are read."""
    data = _as_bytes_array(source)
    header = _read_header(data)
    _check_length(header, data.size)
    return TokenStream(data, header)


def _as_bytes_array(source) -> np.ndarray:
    if isinstance(source, (bytes, bytearray, memoryview)):
        return np.frombuffer(source, dtype=np.uint8)
    # np.memmap cannot map an empty file; an empty stream is simply too short.
    if os.path.getsize(source) == 0:
        return np.zeros(0, dtype=np.uint8)
    return np.memmap(source, dtype=np.uint8, mode="r")


def _read_header(data: np.ndarray) -> TokenHeader:
    head = bytes(data[:HEADER_BYTES])
    _check_preamble(head)
    if len(head) < HEADER_BYTES:
        raise TokenFormatError(
            "truncated",
            f"stream has {data.size} bytes; the header alone needs {HEADER_BYTES}",
        )
    stored, actual = _u32(head, 60), zlib.crc32(head[:60])
    if stored != actual:
        raise TokenFormatError(
            "bad-header-crc",
            f"header CRC-32 is {stored:#010x} but bytes 0..59 give {actual:#010x}",
        )
    if head[53:56] != b"\0\0\0":
        raise TokenFormatError(
            "reserved-nonzero",
            f"reserved header bytes 53..55 must be zero, found {list(head[53:56])}",
        )
    header = TokenHeader(
        tokenizer_hash=head[8:40].hex(),
        tokens_per_record=_u32(head, 40),
        codes_per_group=_u32(head, 44),
        groups=_u32(head, 48),
        bits_per_token=head[52],
        record_count=_u32(head, 56),
    )
    _check_params(header.tokens_per_record, header.codes_per_group, header.groups)
    needed = _bits_for_codes(header.codes_per_group)
    if header.bits_per_token != needed:
        raise TokenFormatError(
            "bits-mismatch",
            f"bitsPerToken is {header.bits_per_token} but codesPerGroup "
            f"{header.codes_per_group} needs ceil(log2 K) = {needed}",
        )
    return header


def _check_preamble(head: bytes) -> None:
    """Magic, version and header size, as far as the bytes reach: they come before the CRC
    because a later version may put its CRC elsewhere."""
    if head[:4] != MAGIC[: len(head[:4])]:
        raise TokenFormatError(
            "bad-magic", f"not a token stream: it starts with {list(head[:4])}, not 'RVQT'"
        )
    if len(head) >= 6 and _u16(head, 4) != VERSION:
        raise TokenFormatError(
            "unsupported-version",
            f"token stream version {_u16(head, 4)} is not supported (this reader reads version 1)",
        )
    if len(head) >= 8 and _u16(head, 6) != HEADER_BYTES:
        raise TokenFormatError(
            "bad-header-size", f"header size is {_u16(head, 6)}; version 1 headers are 64 bytes"
        )


def _check_params(tokens_per_record: int, codes_per_group: int, groups: int | None) -> None:
    """T, K and (unless None) G against the limits of the spec, in the reference's order."""
    _check_int_in(
        tokens_per_record, 1, MAX_TOKENS_PER_RECORD, "tokensPerRecord", "bad-tokens-per-record"
    )
    _bits_for_codes(codes_per_group)
    if groups is None:
        return
    if not 1 <= groups <= tokens_per_record or tokens_per_record % groups:
        raise TokenFormatError(
            "bad-groups",
            f"groups is {groups}; it must divide tokensPerRecord = {tokens_per_record}",
        )


def _bits_for_codes(codes_per_group: int) -> int:
    _check_int_in(
        codes_per_group,
        MIN_CODES_PER_GROUP,
        MAX_CODES_PER_GROUP,
        "codesPerGroup",
        "bad-codes-per-group",
    )
    return (codes_per_group - 1).bit_length()


def _check_int_in(value, low: int, high: int, field: str, code: str) -> None:
    if (
        not isinstance(value, (int, np.integer))
        or isinstance(value, bool)
        or not low <= value <= high
    ):
        raise TokenFormatError(
            code, f"{field} is {value}; it must be an integer in [{low}, {high}]"
        )


def _check_length(header: TokenHeader, actual: int) -> None:
    """Compared before anything is allocated from N, so a huge N over a few bytes fails here."""
    expected = HEADER_BYTES + header.record_count * header.stride
    if actual == expected:
        return
    declared = (
        f"the header declares {header.record_count} records of {header.stride} bytes "
        f"({expected} bytes in all)"
    )
    if actual < expected:
        raise TokenFormatError("truncated", f"{declared} but the stream has {actual} bytes")
    raise TokenFormatError(
        "trailing-bytes", f"{declared} but the stream has {actual} bytes: {actual - expected} extra"
    )


def _record_crcs(payload: np.ndarray, first_index: int) -> np.ndarray:
    """CRC-32 of each record's index (u32 LE) then its packed ids; zlib does the bytes."""
    crcs = np.empty(payload.shape[0], dtype=np.uint32)
    for r in range(payload.shape[0]):
        seed = zlib.crc32((first_index + r).to_bytes(4, "little"))
        crcs[r] = zlib.crc32(payload[r].tobytes(), seed)
    return crcs


def _padding_is_zero(payload: np.ndarray, count: int, bits: int) -> np.ndarray:
    """Per record, whether the bits after the last id (top of the last byte) are zero."""
    tail = count * bits % 8
    if tail == 0:
        return np.ones(payload.shape[0], dtype=bool)
    return (payload[:, -1] >> tail) == 0


def _unpack(payload: np.ndarray, count: int, bits: int) -> np.ndarray:
    """LSB-first unpacking, every record at once: id t starts at bit t*b; since b <= 24 and the
    start is at most 7 bits into its byte, the 4 bytes from that byte hold the whole id."""
    starts = np.arange(count, dtype=np.int64) * bits
    byte, shift = starts >> 3, (starts & 7).astype(np.uint32)
    # Three zero bytes after the payload let the last ids load 4 bytes like the others.
    padded = np.zeros((payload.shape[0], payload.shape[1] + 3), dtype=np.uint32)
    padded[:, : payload.shape[1]] = payload
    words = (
        padded[:, byte]
        | padded[:, byte + 1] << 8
        | padded[:, byte + 2] << 16
        | padded[:, byte + 3] << 24
    )
    return (words >> shift) & np.uint32((1 << bits) - 1)


def _raise_record_error(index: int, crc_ok: bool, padding_ok: bool, ids: np.ndarray, codes: int):
    if not crc_ok:
        raise TokenFormatError(
            "bad-record-crc", f"record {index}: stored CRC-32 does not match its index and ids"
        )
    if not padding_ok:
        raise TokenFormatError("nonzero-padding", f"record {index}: padding bits are not zero")
    t = int(np.flatnonzero(ids >= codes)[0])
    raise TokenFormatError(
        "token-out-of-range",
        f"record {index}, token {t}: id {ids[t]} is not an integer in [0, {codes})",
    )


def _u16(data: bytes, offset: int) -> int:
    return int.from_bytes(data[offset : offset + 2], "little")


def _u32(data: bytes, offset: int) -> int:
    return int.from_bytes(data[offset : offset + 4], "little")


# ---------------------------------------------------------------------------------------------
# The JSON form


_JSON_KEYS = {
    "format",
    "version",
    "tokenizer",
    "tokensPerRecord",
    "codesPerGroup",
    "groups",
    "records",
}


def read_token_json(document) -> tuple[TokenHeader, np.ndarray]:
    """The JSON form (a parsed value, or its text) as (header, (N, T) uint32 ids). Malformed
    fields raise code ``invalid``, as the reference's schema does."""
    if isinstance(document, (str, bytes, bytearray)):
        document = json.loads(document)
    _check_json_fields(document)
    t, k, g, records = (
        document[key] for key in ("tokensPerRecord", "codesPerGroup", "groups", "records")
    )
    t, k, g = int(t), int(k), int(g)
    if g > t or t % g:
        raise _json_error(
            "bad-groups", f"document.groups: {g} groups do not divide {t} tokens per record"
        )
    if len(records) * t > JSON_MAX_TOKENS:
        raise _json_error("too-many-tokens", f"document.records: more than {JSON_MAX_TOKENS} ids")
    for r, record in enumerate(records):
        if len(record) != t:
            raise _json_error(
                "bad-token-count", f"document.records[{r}]: has {len(record)} ids, not {t}"
            )
        above = [i for i, id_ in enumerate(record) if id_ >= k]
        if above:
            raise _json_error(
                "token-out-of-range", f"document.records[{r}][{above[0]}]: id is not below {k}"
            )
    ids = np.array(records, dtype=np.uint32).reshape(len(records), t)
    header = TokenHeader(document["tokenizer"], t, k, g, _bits_for_codes(k), len(records))
    return header, ids


def _check_json_fields(document) -> None:
    """The shape and types the schema of shared/src/format/token-json.ts asks for."""
    if not isinstance(document, dict) or set(document) != _JSON_KEYS:
        raise _json_error(
            "invalid", f"document must be an object with exactly the keys {sorted(_JSON_KEYS)}"
        )
    tokenizer = document["tokenizer"]
    valid = (
        document["format"] == "revq-tokens"
        and _json_int_in(document["version"], 1, 1)
        and isinstance(tokenizer, str)
        and len(tokenizer) == 64
        and all(c in "0123456789abcdef" for c in tokenizer)
        and _json_int_in(document["tokensPerRecord"], 1, MAX_TOKENS_PER_RECORD)
        and _json_int_in(document["codesPerGroup"], MIN_CODES_PER_GROUP, MAX_CODES_PER_GROUP)
        and _json_int_in(document["groups"], 1, MAX_TOKENS_PER_RECORD)
    )
    if not valid:
        raise _json_error(
            "invalid", "document: a header field is missing, of the wrong type or out of range"
        )
    records = document["records"]
    if not isinstance(records, list) or len(records) > JSON_MAX_TOKENS:
        raise _json_error("invalid", "document.records: must be an array of at most 2^22 records")
    for r, record in enumerate(records):
        if not isinstance(record, list) or len(record) > MAX_TOKENS_PER_RECORD:
            raise _json_error("invalid", f"document.records[{r}]: must be an array of ids")
        if not all(_json_int_in(id_, 0, MAX_CODES_PER_GROUP - 1) for id_ in record):
            raise _json_error(
                "invalid", f"document.records[{r}]: ids must be integers in [0, 2^24)"
            )


def _json_int_in(value, low: int, high: int) -> bool:
    # JSON has one number type: 3.0 is the integer 3 to the reference reader too.
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    return float(value).is_integer() and low <= value <= high


def _json_error(code: str, message: str) -> TokenFormatError:
    return TokenFormatError(code, message, format="token-json")


# ---------------------------------------------------------------------------------------------
# .npy of shape (N, T)


_NPY_MAGIC = b"\x93NUMPY"
_NPY_MAX_HEADER_BYTES = 65536


def read_token_npy(
    path: str | os.PathLike, tokens_per_record: int, codes_per_group: int
) -> np.ndarray:
    """Token ids from a .npy file of shape (N, T) and any integer dtype, memory-mapped in the
    file's own dtype after checking T and that every id is in [0, K)."""
    array = _load_npy(path)
    if array.dtype.kind == "f":
        raise TokenFormatError(
            "bad-token-dtype", f"token ids must be integers, got dtype '{array.dtype.str}'", "npy"
        )
    if array.ndim != 2 or array.shape[1] != tokens_per_record:
        raise TokenFormatError(
            "bad-token-shape",
            f"token ids must have shape (N, {tokens_per_record}), got {array.shape}",
            "npy",
        )
    _check_params(tokens_per_record, codes_per_group, None)
    _check_npy_ids(array, codes_per_group)
    return array


def _check_npy_ids(array: np.ndarray, codes: int) -> None:
    """Every id in [0, K), a chunk of records at a time so a mapped file is not read whole."""
    step = max(1, _IDS_PER_CHUNK // array.shape[1])
    for start in range(0, array.shape[0], step):
        chunk = array[start : start + step]
        bad = np.argwhere((chunk < 0) | (chunk >= codes))
        if bad.size:
            r, t = (int(x) for x in bad[0])
            raise TokenFormatError(
                "token-out-of-range",
                f"record {start + r}, token {t}: id {chunk[r, t]} is not in [0, {codes})",
            )


def _load_npy(path) -> np.ndarray:
    """The array of a .npy file, with the reference's codes for what it rejects."""
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        preamble = f.read(12)
        if preamble[:6] != _NPY_MAGIC[: len(preamble[:6])] or len(preamble) < 6:
            raise TokenFormatError(
                "bad-magic", 'not a .npy file: it does not start with "\\x93NUMPY"', "npy"
            )
        if len(preamble) < 8:
            raise TokenFormatError(
                "truncated", f"file has {size} bytes, too few for a header", "npy"
            )
        major, minor = preamble[6], preamble[7]
        if major not in (1, 2, 3) or minor != 0:
            raise TokenFormatError(
                "unsupported-version", f".npy format {major}.{minor} is not supported", "npy"
            )
        length_bytes = 2 if major == 1 else 4
        if len(preamble) < 8 + length_bytes:
            raise TokenFormatError(
                "truncated", f"file has {size} bytes, too few for a header", "npy"
            )
        header_length = int.from_bytes(preamble[8 : 8 + length_bytes], "little")
        if header_length > _NPY_MAX_HEADER_BYTES:
            raise TokenFormatError(
                "header-too-large", f"header claims {header_length} bytes", "npy"
            )
        data_start = 8 + length_bytes + header_length
        if data_start > size:
            raise TokenFormatError(
                "truncated", f"header claims {header_length} bytes, past the end", "npy"
            )
        f.seek(8)
        read = (
            np.lib.format.read_array_header_1_0
            if major == 1
            else np.lib.format.read_array_header_2_0
        )
        try:
            shape, fortran_order, dtype = read(f, max_header_size=_NPY_MAX_HEADER_BYTES)
        except ValueError as error:
            raise TokenFormatError("bad-header", f"malformed header: {error}", "npy") from None
    _check_npy_dtype(dtype)
    if fortran_order:
        raise TokenFormatError(
            "fortran-order", "array is in Fortran order; save it in C order", "npy"
        )
    count = int(np.prod(shape, dtype=object))
    if count * dtype.itemsize != size - data_start:
        raise TokenFormatError(
            "length-mismatch",
            f"shape {shape} needs {count * dtype.itemsize} data bytes, not {size - data_start}",
            "npy",
        )
    if count == 0:
        return np.zeros(shape, dtype=dtype)
    return np.memmap(path, dtype=dtype, mode="r", offset=data_start, shape=shape)


def _check_npy_dtype(dtype: np.dtype) -> None:
    """The dtypes the reference reads: little-endian ints of 1 to 8 bytes, float32, float64."""
    numeric = dtype.fields is None and (
        (dtype.kind in "iu" and dtype.itemsize in (1, 2, 4, 8))
        or (dtype.kind == "f" and dtype.itemsize in (4, 8))
    )
    if numeric and dtype.byteorder != ">":
        return
    if dtype.byteorder == ">":
        raise TokenFormatError("big-endian", f"dtype '{dtype.str}' is big-endian", "npy")
    raise TokenFormatError("unsupported-dtype", f"dtype '{dtype.str}' is not supported", "npy")


# ---------------------------------------------------------------------------------------------
# A dataset's output folder: token shards, their manifest and the record index

SHARD_MANIFEST_FORMAT = "revq.token-shards/v1"
RECORD_INDEX_FORMAT = "revq.record-index/v1"
MANIFEST_FILE = "manifest.json"
RECORDS_FILE = "records.json"


def shard_file_name(index: int) -> str:
    """A shard's file name in the folder, as bucket-keys.ts names it: shard-000000.rvqt, ..."""
    return f"shard-{index:06d}.rvqt"


def _dataset_error(code: str, message: str) -> TokenFormatError:
    return TokenFormatError(code, message, "token-dataset")


class TokenDataset:
    """A dataset's records across its shards, in dataset order. Each shard is a memory-mapped
    token stream, checked against the manifest when the folder is opened; records are decoded
    (and their CRCs checked) as they are read."""

    def __init__(self, manifest: dict, records: list[dict], shards: list[TokenStream]):
        self.manifest = manifest
        self.index = records  # record i: {"record", "shard", "imageId" or "file"}
        self.shards = shards
        self._firsts = [s["firstRecord"] for s in manifest["shards"]]

    tokenizer_hash = property(lambda self: self.manifest["tokenizerHash"])

    @property
    def shape(self) -> tuple[int, int]:
        return (self.manifest["recordCount"], self.manifest["tokensPerRecord"])

    def __len__(self) -> int:
        return self.manifest["recordCount"]

    def __getitem__(self, index: int) -> np.ndarray:
        """Record ``index`` of the dataset (negative counts from the end) as T uint32 ids."""
        n = len(self)
        if not isinstance(index, (int, np.integer)) or not -n <= index < n:
            raise IndexError(f"record index {index} is outside [0, {n}) of this dataset")
        index = int(index) % n
        shard = bisect.bisect_right(self._firsts, index) - 1
        return self.shards[shard][index - self._firsts[shard]]

    def image(self, index: int) -> dict:
        """Which image record ``index`` is: its ``imageId`` (uploads) or ``file`` (prefix datasets)."""
        return self.index[index]

    def records(self) -> Iterator[np.ndarray]:
        """Every record in dataset order, shard after shard, decoded a chunk at a time."""
        for shard in self.shards:
            yield from shard.records()

    def to_array(self, dtype=np.uint32) -> np.ndarray:
        """All ids as an (N, T) array."""
        out = np.empty(self.shape, dtype=dtype)
        for first, shard in zip(self._firsts, self.shards):
            out[first : first + len(shard)] = shard.to_array(dtype)
        return out


def open_dataset(folder: str | os.PathLike) -> TokenDataset:
    """Opens a dataset encode job's output folder: checks the manifest, the record index and
    each shard's header and size against the manifest, and maps every shard."""
    folder = Path(folder)
    manifest = _read_json_file(folder / MANIFEST_FILE, "bad-manifest")
    _check_manifest(manifest)
    index = _read_json_file(folder / RECORDS_FILE, "bad-index")
    records = _check_index(index, manifest)
    shards = [_open_shard(folder, manifest, entry) for entry in manifest["shards"]]
    return TokenDataset(manifest, records, shards)


def _read_json_file(path: Path, code: str):
    try:
        return json.loads(path.read_text("utf-8"))
    except FileNotFoundError:
        raise _dataset_error(code, f"{path.name} is missing from {path.parent}") from None
    except (ValueError, UnicodeDecodeError) as error:
        raise _dataset_error(code, f"{path.name} is not JSON: {error}") from None


def _is_count(value, low: int = 0) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= low


def _check_manifest(m) -> None:
    def bad(message: str):
        raise _dataset_error("bad-manifest", f"{MANIFEST_FILE}: {message}")

    if not isinstance(m, dict) or m.get("format") != SHARD_MANIFEST_FORMAT:
        bad(f"not a shard manifest (format {SHARD_MANIFEST_FORMAT!r})")
    for field in ("recordCount", "tokensPerRecord", "codesPerGroup", "groups", "shardSize"):
        if not _is_count(m.get(field), 1):
            bad(f"{field} is not a positive integer")
    shards = m.get("shards")
    if not isinstance(shards, list) or not shards:
        bad("shards is not a non-empty list")
    expected_first = 0
    for i, shard in enumerate(shards):
        if not isinstance(shard, dict) or shard.get("index") != i:
            bad(f"shard {i} is not listed in order")
        if shard.get("firstRecord") != expected_first or not _is_count(shard.get("records"), 1):
            bad(f"shard {i} does not follow shard {i - 1}'s records")
        if not _is_count(shard.get("bytes"), HEADER_BYTES):
            bad(f"shard {i}'s bytes is not a size")
        expected_first += shard["records"]
    if expected_first != m["recordCount"]:
        bad(f"the shards hold {expected_first} records, not recordCount {m['recordCount']}")


def _check_index(index, manifest) -> list[dict]:
    def bad(message: str):
        raise _dataset_error("bad-index", f"{RECORDS_FILE}: {message}")

    if not isinstance(index, dict) or index.get("format") != RECORD_INDEX_FORMAT:
        bad(f"not a record index (format {RECORD_INDEX_FORMAT!r})")
    if index.get("job") != manifest.get("job"):
        bad(f"it is job {index.get('job')!r}'s, the manifest job {manifest.get('job')!r}'s")
    records = index.get("records")
    if not isinstance(records, list) or len(records) != manifest["recordCount"]:
        bad(f"it does not list the manifest's {manifest['recordCount']} records")
    for i, entry in enumerate(records):
        if not isinstance(entry, dict) or entry.get("record") != i:
            bad(f"entry {i} is not record {i}")
    return records


def _open_shard(folder: Path, manifest: dict, entry: dict) -> TokenStream:
    path = folder / shard_file_name(entry["index"])
    if not path.is_file():
        raise _dataset_error("shard-missing", f"{path.name} is missing from {folder}")
    stream = open_tokens(path)
    h = stream.header
    found = (h.tokenizer_hash, h.tokens_per_record, h.codes_per_group, h.groups, h.record_count)
    wanted = (
        manifest.get("tokenizerHash"),
        manifest["tokensPerRecord"],
        manifest["codesPerGroup"],
        manifest["groups"],
        entry["records"],
    )
    if found != wanted or path.stat().st_size != entry["bytes"]:
        raise _dataset_error(
            "shard-mismatch",
            f"{path.name} is {found} in {path.stat().st_size} bytes; the manifest says {wanted} in {entry['bytes']}",
        )
    return stream
