// spin: burns the CPU for the time the request asks (busy_us), as the CPU-spin workers of the
// Knative load-test studies; replies with the time spent, the loop iterations done and when the
// handler began and finished (the rounds-streams study splits each request's latency with them).
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

// The handler's stamps are CLOCK_REALTIME: time.Now().UnixNano() is clock_gettime(CLOCK_REALTIME),
// the same kernel clock Rust's SystemTime::now() in simctl-client reads. Go exposes no absolute
// CLOCK_MONOTONIC reading (its monotonic time is private to the process), and a raw syscall for it
// would make the handler's reads unlike the client's. The guest runs no time daemon (simctl-init
// is PID 1), so CLOCK_REALTIME is not stepped during a run; the report still checks every
// request's stages are non-negative and add up to its monotonic latency.
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
	done := time.Now()
	return &pb.SpinReply{
		BusyUs:         uint64(done.Sub(start) / time.Microsecond),
		Iterations:     iterations,
		ReceivedUnixNs: start.UnixNano(),
		DoneUnixNs:     done.UnixNano(),
	}, nil
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
