"""aes-python: AES-128-CTR of the request text, the same work and answer as aes-go, on
CPython with Debian's grpcio, so runtimes can be compared. vSwarm's aes.Aes/ShowEncryption."""

import argparse
from concurrent import futures

import grpc

import aes_pb2
import aes_pb2_grpc

KEY = b"6368616e67652074"
IV = b"simctl-aes-iv-16"
DEFAULT_PLAINTEXT = "defaultplaintext"

# AES-128 in pure Python (the guest image has no crypto library): FIPS-197 key expansion and
# block encryption, used in counter mode.
SBOX = [0] * 256


def _init_sbox():
    p = q = 1
    while True:
        p = p ^ ((p << 1) & 0xFF) ^ (0x1B if p & 0x80 else 0)
        q ^= q << 1
        q ^= q << 2
        q ^= q << 4
        q &= 0xFF
        if q & 0x80:
            q ^= 0x09
        x = q ^ (q << 1 | q >> 7) ^ (q << 2 | q >> 6) ^ (q << 3 | q >> 5) ^ (q << 4 | q >> 4)
        SBOX[p] = (x ^ 0x63) & 0xFF
        if p == 1:
            break
    SBOX[0] = 0x63


_init_sbox()


def _xtime(a):
    return ((a << 1) ^ 0x1B) & 0xFF if a & 0x80 else a << 1


def _expand(key):
    words = [list(key[i : i + 4]) for i in range(0, 16, 4)]
    rcon = 1
    for i in range(4, 44):
        temp = list(words[i - 1])
        if i % 4 == 0:
            temp = [SBOX[b] for b in temp[1:] + temp[:1]]
            temp[0] ^= rcon
            rcon = _xtime(rcon)
        words.append([a ^ b for a, b in zip(words[i - 4], temp)])
    return [sum(words[r * 4 : r * 4 + 4], []) for r in range(11)]


ROUND_KEYS = _expand(KEY)


def _encrypt_block(block):
    s = [b ^ k for b, k in zip(block, ROUND_KEYS[0])]
    for rnd in range(1, 11):
        s = [SBOX[b] for b in s]
        s = [s[(c * 4 + r + r * 4) % 16] for c in range(4) for r in range(4)]
        if rnd != 10:
            mixed = []
            for c in range(4):
                a = s[c * 4 : c * 4 + 4]
                t = a[0] ^ a[1] ^ a[2] ^ a[3]
                mixed += [a[i] ^ t ^ _xtime(a[i] ^ a[(i + 1) % 4]) for i in range(4)]
            s = mixed
        s = [b ^ k for b, k in zip(s, ROUND_KEYS[rnd])]
    return bytes(s)


def encrypt(plaintext):
    data = plaintext.encode()
    counter = int.from_bytes(IV, "big")
    out = bytearray()
    for offset in range(0, len(data), 16):
        stream = _encrypt_block(list(counter.to_bytes(16, "big")))
        out += bytes(a ^ b for a, b in zip(data[offset : offset + 16], stream))
        counter = (counter + 1) % (1 << 128)
    return out.hex()


class Aes(aes_pb2_grpc.AesServicer):
    def ShowEncryption(self, request, context):
        plaintext = request.plaintext_message
        if plaintext in ("", "world"):
            plaintext = DEFAULT_PLAINTEXT
        info = f"fn: AES | plaintext: {plaintext} | ciphertext: {encrypt(plaintext)}"
        return aes_pb2.ReturnEncryptionInfo(encryption_info=info)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--addr", default="0.0.0.0")
    parser.add_argument("--port", default="50051")
    args = parser.parse_args()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=1))
    aes_pb2_grpc.add_AesServicer_to_server(Aes(), server)
    server.add_insecure_port(f"{args.addr}:{args.port}")
    server.start()
    print(f"aes-python: serving on {args.addr}:{args.port}", flush=True)
    server.wait_for_termination()


if __name__ == "__main__":
    main()
