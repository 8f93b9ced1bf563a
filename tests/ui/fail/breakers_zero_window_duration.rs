stormguard::breakers! {
    search { failure_rate: 0.5, window: "0s" }
}

fn main() {}
