"""Tests of revq_tokens: python3 -m unittest test_revq_tokens (in clients/python/).

The golden cases are written by the TypeScript code: tests/shared/python-reader.test.ts writes
streams, JSON documents and .npy files with what the TypeScript reader makes of each into
$REVQ_GOLDEN_DIR, runs this file, and compares the results.json written here with its own.
"""

import json
import os
import tempfile
import unittest
import zlib
from pathlib import Path

import numpy as np

from revq_tokens import (
    TokenFormatError,
    open_dataset,
    open_tokens,
    read_token_json,
    read_token_npy,
)

# The test vector of docs/token-stream.md: T = 3, K = 5, G = 3, ids 1, 2, 4.
SPEC_VECTOR = bytes.fromhex(
    "52565154010040000123456789abcdef0123456789abcdef0123456789abcdef"
    "0123456789abcdef0300000005000000030000000300000001000000cbe37bc2"
    "110125b21c95"
)


def reseal_header(data: bytearray) -> bytearray:
    data[60:64] = zlib.crc32(bytes(data[:60])).to_bytes(4, "little")
    return data


class SpecVectorTest(unittest.TestCase):
    def test_reads_the_documented_vector(self):
        stream = open_tokens(SPEC_VECTOR)
        self.assertEqual(stream.tokenizer_hash, "0123456789abcdef" * 4)
        self.assertEqual(
            (stream.tokens_per_record, stream.codes_per_group, stream.groups), (3, 5, 3)
        )
        self.assertEqual((stream.bits_per_token, len(stream), stream.shape), (3, 1, (1, 3)))
        self.assertEqual(stream[0].tolist(), [1, 2, 4])
        self.assertEqual(stream[-1].dtype, np.uint32)
        self.assertEqual(stream.to_array(np.int64).dtype, np.int64)
        self.assertEqual([r.tolist() for r in stream.records()], [[1, 2, 4]])

    def test_index_outside_the_stream(self):
        with self.assertRaises(IndexError):
            open_tokens(SPEC_VECTOR)[1]

    def test_file_is_memory_mapped_and_errors_carry_codes(self):
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder, "one.rvqt")
            path.write_bytes(SPEC_VECTOR)
            stream = open_tokens(path)
            self.assertIsInstance(stream._data, np.memmap)
            self.assertEqual(stream.to_array().tolist(), [[1, 2, 4]])
            Path(folder, "empty.rvqt").write_bytes(b"")
            with self.assertRaises(TokenFormatError) as caught:
                open_tokens(Path(folder, "empty.rvqt"))
            self.assertEqual(caught.exception.code, "truncated")

    def test_huge_record_count_fails_on_length_at_once(self):
        data = bytearray(SPEC_VECTOR[:64]) + bytes(1000)
        data[56:60] = (4_000_000_000).to_bytes(4, "little")
        with self.assertRaises(TokenFormatError) as caught:
            open_tokens(bytes(reseal_header(data)))
        self.assertEqual(caught.exception.code, "truncated")
        self.assertIn("4000000000 records", str(caught.exception))


class JsonAndNpyTest(unittest.TestCase):
    DOCUMENT = {
        "format": "revq-tokens",
        "version": 1,
        "tokenizer": "ab" * 32,
        "tokensPerRecord": 2,
        "codesPerGroup": 3,
        "groups": 2,
        "records": [[0, 2], [1, 1]],
    }

    def test_json(self):
        header, ids = read_token_json(json.dumps(self.DOCUMENT))
        self.assertEqual((header.bits_per_token, header.record_count), (2, 2))
        self.assertEqual(ids.tolist(), [[0, 2], [1, 1]])
        for change, code in [
            ({"records": [[0, 3]]}, "token-out-of-range"),
            ({"records": [[0]]}, "bad-token-count"),
            ({"groups": 3}, "bad-groups"),
            ({"version": True}, "invalid"),
        ]:
            with self.assertRaises(TokenFormatError) as caught:
                read_token_json({**self.DOCUMENT, **change})
            self.assertEqual(caught.exception.code, code)

    def test_npy_of_any_int_dtype_is_memory_mapped(self):
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder, "ids.npy")
            np.save(path, np.array([[0, 2], [1, 1]], dtype=np.int64))
            ids = read_token_npy(path, 2, 3)
            self.assertIsInstance(ids, np.memmap)
            self.assertEqual(ids.tolist(), [[0, 2], [1, 1]])
            for t, k, code in [(3, 3, "bad-token-shape"), (2, 2, "token-out-of-range")]:
                with self.assertRaises(TokenFormatError) as caught:
                    read_token_npy(path, t, k)
                self.assertEqual(caught.exception.code, code)


def golden_cases(name):
    """The folder the TypeScript side wrote its golden files to, and its case list `name`."""
    folder = os.environ.get("REVQ_GOLDEN_DIR")
    if not folder:
        raise unittest.SkipTest("run through tests/shared/python-reader.test.ts")
    return Path(folder), json.loads((Path(folder) / name).read_text())


class GoldenTest(unittest.TestCase):
    """Every case the TypeScript side wrote: the same ids, or the same error code."""

    @classmethod
    def setUpClass(cls):
        cls.folder, cls.cases = golden_cases("cases.json")

    def test_every_case(self):
        results = {}
        for case in self.cases:
            with self.subTest(case=case["file"]):
                outcome = self.read(case)
                ids = outcome.pop("ids", None)
                results[case["file"]] = outcome
                self.assertEqual(outcome["code"], case["code"])
                if case["code"] is None:
                    self.assertEqual(outcome["header"], case["header"])
                    expected = np.load(self.folder / case["idsFile"])
                    self.assertTrue(np.array_equal(ids, expected), "the ids differ")
        (self.folder / "results.json").write_text(json.dumps(results))

    def read(self, case):
        path = self.folder / case["file"]
        try:
            return {"code": None, **READERS[case["kind"]](path, case)}
        except TokenFormatError as error:
            return {"code": error.code}


class DatasetGoldenTest(unittest.TestCase):
    """Every dataset folder the TypeScript side wrote as revq tokenize --dataset writes one: its
    records across shards (the ids the shards were written with, the images of the index), or
    the error code each damage must give."""

    @classmethod
    def setUpClass(cls):
        cls.folder, cls.cases = golden_cases("dataset-cases.json")

    def test_every_folder(self):
        results = {}
        for case in self.cases:
            with self.subTest(case=case["folder"]):
                try:
                    dataset = open_dataset(self.folder / case["folder"])
                    ids = dataset.to_array()
                    outcome = {"code": None}
                except TokenFormatError as error:
                    outcome = {"code": error.code}
                results[case["folder"]] = outcome
                self.assertEqual(outcome["code"], case["code"])
                if case["code"] is None:
                    self.check_records(dataset, ids, case)
        (self.folder / "dataset-results.json").write_text(json.dumps(results))

    def check_records(self, dataset, ids, case):
        expected = np.load(self.folder / case["idsFile"])
        self.assertTrue(np.array_equal(ids, expected), "the ids differ")
        self.assertEqual(dataset.shape, expected.shape)
        # Across shard boundaries, from the end, and in one pass: the same records.
        for i in range(-len(dataset), len(dataset)):
            self.assertTrue(np.array_equal(dataset[i], expected[i]))
        self.assertTrue(np.array_equal(np.stack(list(dataset.records())), expected))
        self.assertTrue(all(isinstance(s._data, np.memmap) for s in dataset.shards))
        self.assertEqual([dataset.image(i) for i in range(len(dataset))], case["images"])
        with self.assertRaises(IndexError):
            dataset[len(dataset)]


def read_stream(path, case):
    stream = open_tokens(path)
    ids = stream.to_array()
    # Every way of reading must agree: from bytes, record by record, one record at a time.
    assert np.array_equal(open_tokens(path.read_bytes()).to_array(), ids)
    assert all(np.array_equal(r, ids[i]) for i, r in enumerate(stream.records()))
    assert all(np.array_equal(stream[i], ids[i]) for i in range(len(stream)))
    return {"header": header_json(stream.header), "ids": ids}


def read_json(path, case):
    header, ids = read_token_json(json.loads(path.read_text()))
    return {"header": header_json(header), "ids": ids}


def read_npy(path, case):
    ids = read_token_npy(path, case["tokensPerRecord"], case["codesPerGroup"])
    return {"header": None, "ids": ids}


READERS = {"stream": read_stream, "json": read_json, "npy": read_npy}


def header_json(header):
    """The header as the TypeScript side names its fields."""
    return {
        "tokenizerHash": header.tokenizer_hash,
        "tokensPerRecord": header.tokens_per_record,
        "codesPerGroup": header.codes_per_group,
        "groups": header.groups,
        "bitsPerToken": header.bits_per_token,
        "recordCount": header.record_count,
    }


if __name__ == "__main__":
    unittest.main()
