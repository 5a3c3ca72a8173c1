"""fibonacci-python: vSwarm's fibonacci-python (benchmarks/fibonacci/python/server.py).

As in vSwarm: Python integers (no overflow), int() of the request (an unparsable request fails
with gRPC UNKNOWN carrying the ValueError text), a getgid system call per invocation through
ctypes, and the listening port from the GRPC_PORT environment variable on [::] (--addr and
--port are parsed and ignored, as in vSwarm). vSwarm's tracing (off unless ENABLE_TRACING is
set) is not built in.

Not reproduced: vSwarm wraps the work in its tracing.Span, which with tracing off still asks
OpenTelemetry's API for a no-op tracer and enters and leaves a non-recording span on every
call (a few microseconds of Python). OpenTelemetry is not in Debian, and its PyPI API (1.3.0,
vSwarm's pin) did not find its runtime context when installed into site-packages here; to do.
"""

import argparse
import ctypes
import logging
import os
import sys
from concurrent import futures

import grpc

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
                    help="Zipkin endpoint url (tracing is not built in)")
parser.parse_args()

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
