"""aes-python: vSwarm's aes-python (benchmarks/aes/python/server.py): AES in CTR mode with pyaes.

As in vSwarm, the key is the UTF-8 bytes of the hex text given with --key (32 bytes, so AES-256),
the counter starts at 0, the ciphertext is formatted as a Python bytes literal, and an empty or
"world" request is replaced by --default_plaintext.

vSwarm's tracing module (tracing.py, from workloads/python-lib/) is imported and the work wrapped
in its Span as in vSwarm; with tracing off (ENABLE_TRACING unset) that is OpenTelemetry 1.3.0's
no-op span on every call, and with it on, spans go to --zipkin.
"""

import argparse
from concurrent import futures

import grpc
import pyaes

import tracing
import aes_pb2
import aes_pb2_grpc


def parse_args():
    parser = argparse.ArgumentParser()
    parser.add_argument("-a", "--addr", dest="addr", default="0.0.0.0", help="IP address")
    parser.add_argument("-p", "--port", dest="port", default="50051", help="serve port")
    parser.add_argument("-zipkin", "--zipkin", dest="url", default="http://0.0.0.0:9411/api/v2/spans",
                        help="Zipkin endpoint url")
    parser.add_argument("-k", "--key", dest="KEY", default="6368616e676520746869732070617373",
                        help="Secret key")
    parser.add_argument("--default_plaintext", default="defaultplaintext",
                        help="Default plain text if plaintext_message is empty or 'world'")
    return parser.parse_args()


ARGS = parse_args()
KEY = ARGS.KEY.encode(encoding="UTF-8")

# As vSwarm's aes-python: only with ENABLE_TRACING set is IsTracingEnabled asked (and printed).
if tracing.TRACE and tracing.IsTracingEnabled():
    tracing.initTracer("aes-python", url=ARGS.url)
    tracing.grpcInstrumentClient()
    tracing.grpcInstrumentServer()


def aes_mode_ctr(plaintext):
    counter = pyaes.Counter(initial_value=0)
    aes = pyaes.AESModeOfOperationCTR(KEY, counter=counter)
    return aes.encrypt(plaintext)


class Aes(aes_pb2_grpc.AesServicer):
    def ShowEncryption(self, request, context):
        if request.plaintext_message in ["", "world"]:
            plaintext = ARGS.default_plaintext
        else:
            plaintext = request.plaintext_message
        with tracing.Span("AES Encryption"):
            ciphertext = aes_mode_ctr(plaintext)
        msg = f"fn: AES | plaintext: {plaintext} | ciphertext: {ciphertext} | runtime: Python"
        return aes_pb2.ReturnEncryptionInfo(encryption_info=msg)


def serve():
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=1))
    aes_pb2_grpc.add_AesServicer_to_server(Aes(), server)
    address = ARGS.addr + ":" + ARGS.port
    server.add_insecure_port(address)
    print("Start AES-python server. Addr: " + address)
    server.start()
    server.wait_for_termination()


if __name__ == "__main__":
    serve()
