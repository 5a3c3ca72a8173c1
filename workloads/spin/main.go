// spin: burns the CPU for the time the request asks (busy_us), as the CPU-spin workers of the
// Knative load-test studies; replies with the time spent and the loop iterations done.
package main

import (
	"context"
	"flag"
	"log"
	"net"
	"time"

	pb "simctl/workloads/proto/spin"

	"google.golang.org/grpc"
)

type server struct {
	pb.UnimplementedSpinServer
}

var sink uint64

func (s *server) Spin(ctx context.Context, in *pb.SpinRequest) (*pb.SpinReply, error) {
	start := time.Now()
	budget := time.Duration(in.GetBusyUs()) * time.Microsecond
	var iterations uint64
	x := uint64(88172645463325252)
	for time.Since(start) < budget {
		// A little integer work per check of the clock.
		for i := 0; i < 256; i++ {
			x ^= x << 13
			x ^= x >> 7
			x ^= x << 17
		}
		iterations++
	}
	sink += x
	return &pb.SpinReply{BusyUs: uint64(time.Since(start) / time.Microsecond), Iterations: iterations}, nil
}

func main() {
	addr := flag.String("addr", "0.0.0.0:50051", "address to listen on")
	flag.Parse()
	listener, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatalf("spin: cannot listen on %s: %v", *addr, err)
	}
	grpcServer := grpc.NewServer()
	pb.RegisterSpinServer(grpcServer, &server{})
	log.Printf("spin: serving on %s", *addr)
	if err := grpcServer.Serve(listener); err != nil {
		log.Fatalf("spin: %v", err)
	}
}
