//! Compiles the workloads' gRPC interfaces for the client (feature `client` only).

fn main() {
    #[cfg(feature = "client")]
    {
        let protos = ["aes", "fibonacci", "auth", "spin", "demo"]
            .map(|name| format!("../workloads/proto/{name}.proto"));
        for proto in &protos {
            println!("cargo:rerun-if-changed={proto}");
        }
        if let Err(err) = tonic_prost_build::configure()
            .build_server(true)
            .compile_protos(&protos, &["../workloads/proto".to_string()])
        {
            panic!(
                "cannot compile the workload protos (is protoc installed? apt-get install protobuf-compiler): {err}"
            );
        }
    }
}
