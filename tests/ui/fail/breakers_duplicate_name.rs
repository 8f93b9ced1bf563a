stormguard::breakers! {
    payments { consecutive_failures: 5 }
    search { failure_rate: 0.5 }
    payments { open_for: "30s" }
}

fn main() {}
