stormguard::breakers! {
    search { failure_rate: 50, window: "10s" }
}

fn main() {}
