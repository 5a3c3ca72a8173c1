// fibonacci-go: vSwarm's fibonacci function in Go (benchmarks/fibonacci/go/server.go): the
// request's name is parsed as a signed 64-bit integer (anything unparsable counts as 0, an
// out-of-range number as the nearest int64 bound, exactly as strconv.ParseInt returns them,
// so such a request runs practically forever here as in vSwarm), and the reply carries fib(x)
// computed with math/big, so large x neither overflows nor differs from vSwarm. Reply text and
// flags are vSwarm's (see tests/fixtures/conformance/fibonacci-go.jsonl); vSwarm's optional
// tracing is left out.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"math/big"
	"net"
	"strconv"

	pb "simctl/workloads/proto/fibonacci"

	"google.golang.org/grpc"
	"google.golang.org/grpc/reflection"
)

var address = flag.String("addr", "0.0.0.0:50051", "Address:Port the grpc server is listening to")

// fibonacci iterates with three big integers as vSwarm does (fib(0) = 0, fib(1) = 1); n <= 0
// gives 0.
func fibonacci(n int) *big.Int {
	if n <= 0 {
		return big.NewInt(0)
	}
	previous := big.NewInt(0)
	current := big.NewInt(1)
	sum := big.NewInt(0)
	for i := 0; i < n; i++ {
		sum.Add(previous, current)
		previous.Set(current)
		current.Set(sum)
	}
	return previous
}

type server struct {
	pb.UnimplementedGreeterServer
}

func (s *server) SayHello(ctx context.Context, in *pb.HelloRequest) (*pb.HelloReply, error) {
	// The parse error is ignored on purpose: vSwarm answers fib(0) for unparsable input.
	x, _ := strconv.ParseInt(in.GetName(), 10, 64)
	y := fibonacci(int(x))
	reply := fmt.Sprintf("fn: Fib: y = fib(x) | x: %d y: %s | runtime: GoLang", x, y.String())
	return &pb.HelloReply{Message: reply}, nil
}

func main() {
	flag.Parse()
	listener, err := net.Listen("tcp", *address)
	if err != nil {
		log.Fatalf("failed to listen: %v", err)
	}
	log.Printf("Start fibonacci-go server. Addr : %s\n", *address)
	grpcServer := grpc.NewServer()
	pb.RegisterGreeterServer(grpcServer, &server{})
	reflection.Register(grpcServer)
	if err := grpcServer.Serve(listener); err != nil {
		log.Fatalf("failed to serve: %v", err)
	}
}
