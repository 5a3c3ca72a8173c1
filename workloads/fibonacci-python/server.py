"""fibonacci-python: vSwarm's fibonacci-python (benchmarks/fibonacci/python/server.py).

As in vSwarm: Python integers (no overflow), int() of the request (an unparsable request fails
with gRPC UNKNOWN carrying the ValueError text), a getgid system call per invocation through
ctypes, and the listening port from the GRPC_PORT environment variable on [::] (--addr and
--port are parsed and ignored, as in vSwarm).

vSwarm's tracing module (tracing.py, from workloads/python-lib/) is imported and the work wrapped
in its Span as in vSwarm; with tracing off (ENABLE_TRACING unset) that is OpenTelemetry 1.3.0's
no-op span on every call, and with it on, spans go to --zipkin.
"""

import argparse
import ctypes
import logging
import os
import sys
from concurrent import futures

import grpc

import tracing
import fibonacci_pb2
import fibonacci_pb2_grpc

SYS_GETGID = 104  # x86-64; vSwarm calls syscall(104) on every invocation

libc = ctypes.CDLL(None)
syscall = libc.syscall

print("python version: %s" % sys.version)
print("Server has PID: %d" % os.getpid())
GRPC_PORT_ADDRESS = os.getenv("GRPC_PORT")

parser = argparse.ArgumentParser()
parser.add_argument("-a", "--addr", dest="addr", default="0.0.0.0", help="IP address (ignored)")
parser.add_argument("-p", "--port", dest="port", default="50051", help="serve port (ignored; set GRPC_PORT)")
parser.add_argument("-zipkin", "--zipkin", dest="url", default="http://0.0.0.0:9411/api/v2/spans",
                    help="Zipkin endpoint url")
args = parser.parse_args()

if tracing.IsTracingEnabled():
    tracing.initTracer("fibonacci", url=args.url)
    tracing.grpcInstrumentClient()
    tracing.grpcInstrumentServer()

sys.set_int_max_str_digits(500000)


def fibonacci(num):
    # The same statements as vSwarm's loop, so the interpreter does the same work.
    num1 = 0
    num2 = 1
    total = 0
    for _ in range(num):
        total = num1 + num2
        num1 = num2
        num2 = total
    return num1


class Greeter(fibonacci_pb2_grpc.GreeterServicer):
    def SayHello(self, request, context):
        with tracing.Span("Run fibonacci"):
            x = int(request.name)
            y = fibonacci(x)
        syscall(SYS_GETGID)
        msg = "fn: Fib: y = fib(x) | x: %i y: %i | runtime: python" % (x, y)
        return fibonacci_pb2.HelloReply(message=msg)


def serve():
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=1))
    fibonacci_pb2_grpc.add_GreeterServicer_to_server(Greeter(), server)
    address = "[::]:" + GRPC_PORT_ADDRESS if GRPC_PORT_ADDRESS else "[::]:50051"
    server.add_insecure_port(address)
    logging.info("Start server: listen on : " + address)
    server.start()
    server.wait_for_termination()


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    serve()
