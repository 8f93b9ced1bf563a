stormguard::breakers! {
    payments { open_for: "30s", consecutive_failures: 5, open_for: "10s" }
}

fn main() {}
