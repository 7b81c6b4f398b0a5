#!/usr/bin/env python3
"""make_h2idle_corpus.py - writes the seed inputs of fuzz_h2idle.c into
tests/fuzz/corpus/h2idle/ (run from the top of the tree; the files are
committed, this is how they were made).  Each seed is a list of the target's
steps; its name says what it reaches (check with FUZZ_H2_VERBOSE=1 and the
replay binary)."""
import os
import struct

NOPS = 13  # the steps of fuzz_h2idle.c: the op byte modulo 13
RAW, ACK, SETTINGS, REQ, DATA, WUPD, PRIO, RST, PING, GOAWAY, IDLE, DRAIN, CONT = range(NOPS)

# pick_stream's byte: the low three bits choose
LAST, NEW, OLDER, ZERO = 0, 1, 3, 4


def sid(n):
    """pick_stream's byte for the odd stream id n (1 to 63)."""
    return 6 | (n - 1) // 2 << 3


def op(k, bits=0):
    """The first op byte that is k modulo 13 with bits (0x10, 0x20) set as given."""
    for v in range(256):
        if v % NOPS == k and v & 0x30 == bits:
            return bytes([v])
    raise ValueError(k)


def settings(*pairs):
    out = op(SETTINGS, 0x10 if len(pairs) == 2 else 0)
    for ident, value in pairs:
        out += bytes([ident]) + struct.pack(">I", value)
    return out


NONE, ZERO_SIZE, EMPTIED, OVER, FULL = 0, 1, 2, 3, 4


def req(path=0, start=EMPTIED, token=None, ref=None, end=True, stream=NEW, late_update=False):
    """A request: path index (/, /big, /later, /stream), table size updates at
    the start (NONE; ZERO_SIZE; EMPTIED: 0 then 4096, what a client says
    after a settle; OVER: 4097; FULL: 4096 alone), an indexed x-token, a
    dynamic-table reference (62 + ref)."""
    b = path | (start & 3) << 2 | (0x80 if start == FULL else 0)
    b |= (0x10 if token else 0) | (0x20 if ref is not None else 0)
    b |= 0x40 if late_update else 0
    out = op(REQ, 0 if end else 0x10) + bytes([stream, b])
    if ref is not None:
        out += bytes([ref])
    if token:
        out += token.encode()[:8].ljust(8, b"a")
    return out


def data(length, end=True, stream=LAST):
    return op(DATA, 0x10 if end else 0) + bytes([stream, length])


def wupd(inc, stream=None):
    if stream is None:
        return op(WUPD, 0x20) + struct.pack(">I", inc)
    return op(WUPD, 0x30) + bytes([stream]) + struct.pack(">I", inc)


ACKS = op(ACK)
IDLES = op(IDLE)
# A client's opening: SETTINGS (INITIAL_WINDOW_SIZE, HEADER_TABLE_SIZE) and
# the ACK of ours.
OPEN = settings((4, 65535), (1, 4096)) + ACKS
# Served, idle, both settle SETTINGS acknowledged: the session given back.
SERVED_GIVEN_BACK = OPEN + req(token="tokenone") + IDLES + ACKS + ACKS + IDLES

SEEDS = {
    "settle_rebuild_ping": SERVED_GIVEN_BACK + op(PING) + req(token="tokenone") + IDLES + ACKS
    + ACKS + req(token="tokentwo"),
    "settle_ack_missing": OPEN + req(token="tokenone") + IDLES + ACKS + IDLES + req(),
    "settle_no_size_update": OPEN + req(token="tokenone") + IDLES + ACKS + ACKS + req(start=NONE),
    "settle_stale_index": OPEN + req(token="tokenone") + IDLES + ACKS + req(ref=0),
    "settle_ack_duplicated": SERVED_GIVEN_BACK + ACKS + req(),
    "settle_ack_before_request": settings((4, 65535)) + req(token="tokenone") + ACKS + IDLES
    + ACKS + ACKS + op(PING),
    "index_kept_in_a_burst": OPEN + req(token="tokenone") + req(ref=0, start=NONE) + IDLES + ACKS + ACKS
    + req(ref=0),
    "given_back_stale_index": SERVED_GIVEN_BACK + req(ref=0),
    "given_back_size_updates": SERVED_GIVEN_BACK + req(start=ZERO_SIZE, token="again")
    + req(start=FULL) + req(start=NONE) + req(start=OVER),
    "given_back_late_size_update": SERVED_GIVEN_BACK + req(late_update=True),
    "given_back_data_old_stream": SERVED_GIVEN_BACK + data(10) + data(5, stream=OLDER) + req(),
    "given_back_window_update": SERVED_GIVEN_BACK + wupd(1000) + wupd(70000, stream=LAST)
    + IDLES + req(),
    "given_back_priority": SERVED_GIVEN_BACK + op(PRIO) + bytes([LAST, NEW, 16]) + req(),
    "given_back_rst_kept": SERVED_GIVEN_BACK + op(RST) + bytes([LAST, 8]) + req(),
    "given_back_client_goaway": SERVED_GIVEN_BACK + op(GOAWAY) + bytes([0]),
    "given_back_drain": SERVED_GIVEN_BACK + op(DRAIN) + ACKS,
    "given_back_continuation": SERVED_GIVEN_BACK + op(CONT) + bytes([NEW, 0x10]) + b"tokenone"
    + bytes([5]),
    "given_back_reused_stream": SERVED_GIVEN_BACK + req(stream=sid(1)),
    "window_deficit": settings((4, 65535)) + ACKS + req(path=1, token="tokenone") + IDLES + ACKS
    + ACKS + IDLES
    + op(PING) + req(path=1) + IDLES + wupd(30000) + IDLES + req(path=1),
    "small_stream_window": settings((4, 100)) + ACKS + req(path=1, token="tokenone")
    + wupd(65535, LAST) + IDLES + ACKS + ACKS + IDLES + op(PING) + req(),
    # the client's HEADER_TABLE_SIZE for our encoder changed while idle,
    # our send window short: the rebuild's unsent answer on the kept stream
    "table_size_changed_while_idle": settings((4, 65535)) + ACKS + req(path=1, token="tokenone")
    + settings((1, 100)) + IDLES + ACKS + ACKS + IDLES + op(PING) + req(),
    # SETTINGS_INITIAL_WINDOW_SIZE 0: answers wait; the kept stream is reset
    "stream_window_zero": settings((4, 0)) + ACKS + req(path=0) + IDLES + op(PING) + req(),
    "body_then_settle": OPEN + req(path=3, token="bodybody", end=False) + data(40) + IDLES
    + ACKS + ACKS + op(PING) + req(),
    "later_answer": OPEN + req(path=2, token="tokenone") + IDLES + ACKS + ACKS + req(path=2),
    "before_stream_given_back": OPEN + wupd(100000) + op(PRIO) + bytes([NEW, ZERO, 1])
    + op(PING) + op(PING) + req(token="first"),
    "settings_changed_after_give_back": SERVED_GIVEN_BACK + settings((1, 0), (5, 32768)) + req()
    + IDLES + ACKS + IDLES + req(),
    # 16 streams open (fuzz_h2idle's MAX_CONCURRENT_STREAMS) and a 17th
    # refused before our SETTINGS were acknowledged; the 16 ended, idle,
    # settled; then the refused id again: ignored, the session kept.
    "refused_stream_reused": settings((4, 65535))
    + b"".join(req(start=NONE, end=False) for _ in range(17)) + ACKS
    + b"".join(data(0, stream=sid(n)) for n in range(1, 33, 2)) + IDLES
    + req(start=NONE, stream=sid(33)) + req(start=NONE),
    # idle until the idle timeout (60 s, a second a step): the timer's
    # GOAWAY rebuilds the given-back session, the connection closes once it
    # is out (the PING comes too late).
    "idle_timeout_given_back": SERVED_GIVEN_BACK + IDLES * 60 + op(PING),
    "raw_after_give_back": SERVED_GIVEN_BACK + op(RAW) + bytes([9]) + bytes(
        [0, 0, 0, 4, 1, 0, 0, 0, 0]),
}


def main():
    d = os.path.join("tests", "fuzz", "corpus", "h2idle")
    os.makedirs(d, exist_ok=True)
    for name, seed in SEEDS.items():
        with open(os.path.join(d, name), "wb") as f:
            f.write(seed)


if __name__ == "__main__":
    main()
