"""A decoder for the messages of PostgreSQL's `pgoutput` logical replication plugin (protocol 1).

`pg_logical_slot_peek_binary_changes(slot, upto, n, 'proto_version', '1', 'publication_names', ...)`
returns one message per row. The ones this source needs are decoded into small records; the rest
(Origin, Type, logical Message) are recognised and skipped. Column values arrive as PostgreSQL's
text form (bytes); turning them into Python values is the caller's (it has the connection's
type loaders). The format is PostgreSQL's "Logical Replication Message Formats".
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

# A column of a tuple: its text bytes, None for SQL NULL, or UNCHANGED for a TOASTed value that an
# UPDATE did not change (the message does not carry it).
UNCHANGED = object()
TupleValues = tuple[object, ...]


@dataclass(frozen=True)
class Column:
    name: str
    type_oid: int
    is_key: bool


@dataclass(frozen=True)
class Relation:
    oid: int
    schema: str
    name: str
    replica_identity: str  # d(efault), n(othing), f(ull), i(ndex)
    columns: tuple[Column, ...]


@dataclass(frozen=True)
class Begin:
    final_lsn: int
    xid: int


@dataclass(frozen=True)
class Commit:
    commit_lsn: int
    end_lsn: int


@dataclass(frozen=True)
class Insert:
    relation_oid: int
    new: TupleValues


@dataclass(frozen=True)
class Update:
    relation_oid: int
    # The old key ('K', when the key changed) or the whole old row ('O', REPLICA IDENTITY FULL).
    old: TupleValues | None
    old_kind: str | None
    new: TupleValues


@dataclass(frozen=True)
class Delete:
    relation_oid: int
    old: TupleValues
    old_kind: str  # 'K' (key columns, the rest null) or 'O' (the whole row)


@dataclass(frozen=True)
class Truncate:
    relation_oids: tuple[int, ...]


@dataclass(frozen=True)
class Skipped:
    kind: str


Message = Relation | Begin | Commit | Insert | Update | Delete | Truncate | Skipped


class DecodeError(ValueError):
    """The bytes are not a pgoutput protocol 1 message."""


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.at = 0

    def take(self, size: int) -> bytes:
        end = self.at + size
        if end > len(self.data):
            raise DecodeError("message ends early")
        chunk = self.data[self.at : end]
        self.at = end
        return chunk

    def byte(self) -> str:
        return self.take(1).decode("ascii")

    def int8(self) -> int:
        return int(struct.unpack("!b", self.take(1))[0])

    def int16(self) -> int:
        return int(struct.unpack("!h", self.take(2))[0])

    def int32(self) -> int:
        return int(struct.unpack("!i", self.take(4))[0])

    def uint32(self) -> int:
        return int(struct.unpack("!I", self.take(4))[0])

    def int64(self) -> int:
        return int(struct.unpack("!q", self.take(8))[0])

    def uint64(self) -> int:
        return int(struct.unpack("!Q", self.take(8))[0])

    def string(self) -> str:
        end = self.data.find(b"\x00", self.at)
        if end < 0:
            raise DecodeError("unterminated string")
        text = self.data[self.at : end].decode("utf-8")
        self.at = end + 1
        return text

    def tuple_data(self) -> TupleValues:
        values: list[object] = []
        for _ in range(self.int16()):
            kind = self.byte()
            if kind == "n":
                values.append(None)
            elif kind == "u":
                values.append(UNCHANGED)
            elif kind in ("t", "b"):
                values.append(self.take(self.int32()))
            else:
                raise DecodeError(f"unknown tuple value kind {kind!r}")
        return tuple(values)


def decode(data: bytes | memoryview) -> Message:
    """One pgoutput message."""
    reader = _Reader(bytes(data))
    kind = reader.byte()
    if kind == "B":
        final_lsn = reader.uint64()
        reader.int64()  # commit timestamp
        return Begin(final_lsn, reader.uint32())
    if kind == "C":
        reader.int8()  # flags
        commit_lsn = reader.uint64()
        end_lsn = reader.uint64()
        return Commit(commit_lsn, end_lsn)
    if kind == "R":
        oid = reader.uint32()
        schema = reader.string()
        name = reader.string()
        identity = reader.byte()
        columns = []
        for _ in range(reader.int16()):
            flags = reader.int8()
            column = reader.string()
            type_oid = reader.uint32()
            reader.int32()  # type modifier
            columns.append(Column(column, type_oid, bool(flags & 1)))
        return Relation(oid, schema, name, identity, tuple(columns))
    if kind == "I":
        oid = reader.uint32()
        if reader.byte() != "N":
            raise DecodeError("insert without a new tuple")
        return Insert(oid, reader.tuple_data())
    if kind == "U":
        oid = reader.uint32()
        marker = reader.byte()
        old: TupleValues | None = None
        old_kind: str | None = None
        if marker in ("K", "O"):
            old, old_kind = reader.tuple_data(), marker
            marker = reader.byte()
        if marker != "N":
            raise DecodeError("update without a new tuple")
        return Update(oid, old, old_kind, reader.tuple_data())
    if kind == "D":
        oid = reader.uint32()
        marker = reader.byte()
        if marker not in ("K", "O"):
            raise DecodeError("delete without an old key or row")
        return Delete(oid, reader.tuple_data(), marker)
    if kind == "T":
        count = reader.int32()
        reader.int8()  # options (CASCADE, RESTART IDENTITY)
        return Truncate(tuple(reader.uint32() for _ in range(count)))
    if kind in ("O", "Y", "M"):
        return Skipped(kind)
    raise DecodeError(f"unknown pgoutput message {kind!r}")


def format_lsn(lsn: int) -> str:
    """An LSN in PostgreSQL's text form (`16/B374D848`)."""
    return f"{lsn >> 32:X}/{lsn & 0xFFFFFFFF:X}"


def parse_lsn(text: str) -> int:
    high, _, low = text.partition("/")
    return (int(high, 16) << 32) | int(low, 16)
