// shippingservice: vSwarm's online-shop shipping service
// (benchmarks/online-shop/shippingservice/{main,quote,tracker}.go), serving
// hipstershop.ShippingService.
//
// Kept as in vSwarm: GetQuote always quotes $8.99 (math.Modf of 8.99, cents truncated),
// ShipOrder makes a random tracking id from the address length (math/rand seeded with the
// time on first use), logrus JSON logging at debug level with a log line before and after each
// call, the gRPC health service, server reflection, and OpenCensus' gRPC stats handler unless
// DISABLE_STATS is set. Left out: the Stackdriver/Jaeger tracing and the Cloud profiler, which
// vSwarm-u disables (DISABLE_TRACING, DISABLE_PROFILER) so their code never runs.
package main

import (
	"context"
	"fmt"
	"math"
	"math/rand"
	"net"
	"os"
	"time"

	pb "simctl/workloads/proto/demo"

	"github.com/sirupsen/logrus"
	"go.opencensus.io/plugin/ocgrpc"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection"
	"google.golang.org/grpc/status"
)

const defaultPort = "50051"

var log = newLogger()

func newLogger() *logrus.Logger {
	logger := logrus.New()
	logger.Level = logrus.DebugLevel
	logger.Formatter = &logrus.JSONFormatter{
		FieldMap: logrus.FieldMap{
			logrus.FieldKeyTime:  "timestamp",
			logrus.FieldKeyLevel: "severity",
			logrus.FieldKeyMsg:   "message",
		},
		TimestampFormat: time.RFC3339Nano,
	}
	logger.Out = os.Stdout
	return logger
}

func main() {
	log.Info("Tracing disabled.")
	log.Info("Profiling disabled.")

	port := defaultPort
	if value, ok := os.LookupEnv("PORT"); ok {
		port = value
	}
	port = fmt.Sprintf(":%s", port)
	listener, err := net.Listen("tcp", port)
	if err != nil {
		log.Fatalf("failed to listen: %v", err)
	}
	var srv *grpc.Server
	if os.Getenv("DISABLE_STATS") == "" {
		log.Info("Stats enabled.")
		srv = grpc.NewServer(grpc.StatsHandler(&ocgrpc.ServerHandler{}))
	} else {
		log.Info("Stats disabled.")
		srv = grpc.NewServer()
	}
	svc := &server{}
	pb.RegisterShippingServiceServer(srv, svc)
	healthpb.RegisterHealthServer(srv, svc)
	log.Infof("Shipping Service listening on port %s", port)
	reflection.Register(srv)
	if err := srv.Serve(listener); err != nil {
		log.Fatalf("failed to serve: %v", err)
	}
}

type server struct {
	pb.UnimplementedShippingServiceServer
}

func (s *server) Check(ctx context.Context, req *healthpb.HealthCheckRequest) (*healthpb.HealthCheckResponse, error) {
	return &healthpb.HealthCheckResponse{Status: healthpb.HealthCheckResponse_SERVING}, nil
}

func (s *server) Watch(req *healthpb.HealthCheckRequest, ws healthpb.Health_WatchServer) error {
	return status.Errorf(codes.Unimplemented, "health check via Watch not implemented")
}

func (s *server) GetQuote(ctx context.Context, in *pb.GetQuoteRequest) (*pb.GetQuoteResponse, error) {
	log.Info("[GetQuote] received request")
	defer log.Info("[GetQuote] completed request")
	quote := createQuoteFromCount(0)
	return &pb.GetQuoteResponse{
		CostUsd: &pb.Money{
			CurrencyCode: "USD",
			Units:        int64(quote.Dollars),
			Nanos:        int32(quote.Cents * 10000000)},
	}, nil
}

func (s *server) ShipOrder(ctx context.Context, in *pb.ShipOrderRequest) (*pb.ShipOrderResponse, error) {
	log.Info("[ShipOrder] received request")
	defer log.Info("[ShipOrder] completed request")
	// vSwarm dereferences the address unchecked: a request without one panics the handler.
	baseAddress := fmt.Sprintf("%s, %s, %s", in.Address.StreetAddress, in.Address.City, in.Address.State)
	return &pb.ShipOrderResponse{TrackingId: createTrackingID(baseAddress)}, nil
}

// quote is a price in dollars and cents.
type quote struct {
	Dollars uint32
	Cents   uint32
}

// createQuoteFromCount ignores the item count, as vSwarm's does.
func createQuoteFromCount(count int) quote {
	return createQuoteFromFloat(8.99)
}

func createQuoteFromFloat(value float64) quote {
	units, fraction := math.Modf(value)
	return quote{uint32(units), uint32(math.Trunc(fraction * 100))}
}

var seeded = false

func createTrackingID(salt string) string {
	if !seeded {
		rand.Seed(time.Now().UnixNano())
		seeded = true
	}
	return fmt.Sprintf("%c%c-%d%s-%d%s",
		randomLetterCode(),
		randomLetterCode(),
		len(salt),
		randomNumber(3),
		len(salt)/2,
		randomNumber(7),
	)
}

func randomLetterCode() uint32 {
	return 65 + uint32(rand.Intn(25))
}

func randomNumber(digits int) string {
	str := ""
	for i := 0; i < digits; i++ {
		str = fmt.Sprintf("%s%d", str, rand.Intn(10))
	}
	return str
}
