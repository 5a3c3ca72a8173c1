// fibonacci-go: computes the n-th Fibonacci number for the request's name field (an integer),
// speaking vSwarm's fibonacci.Greeter/SayHello interface.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"net"
	"strconv"

	pb "simctl/workloads/proto/fibonacci"

	"google.golang.org/grpc"
)

type server struct {
	pb.UnimplementedGreeterServer
}

func fibonacci(n uint64) uint64 {
	a, b := uint64(0), uint64(1)
	for i := uint64(0); i < n; i++ {
		a, b = b, a+b
	}
	return a
}

func (s *server) SayHello(ctx context.Context, in *pb.HelloRequest) (*pb.HelloReply, error) {
	n, err := strconv.ParseUint(in.GetName(), 10, 64)
	if err != nil {
		n = 10
	}
	return &pb.HelloReply{Message: fmt.Sprintf("fn: Fib: y = fib(x) | x: %d y: %d | runtime: GoLang", n, fibonacci(n))}, nil
}

func main() {
	addr := flag.String("addr", "0.0.0.0:50051", "address to listen on")
	flag.Parse()
	listener, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatalf("fibonacci-go: cannot listen on %s: %v", *addr, err)
	}
	grpcServer := grpc.NewServer()
	pb.RegisterGreeterServer(grpcServer, &server{})
	log.Printf("fibonacci-go: serving on %s", *addr)
	if err := grpcServer.Serve(listener); err != nil {
		log.Fatalf("fibonacci-go: %v", err)
	}
}
