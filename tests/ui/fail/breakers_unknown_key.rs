stormguard::breakers! {
    payments { consecutive_failure: 5, open_for: "30s" }
}

fn main() {}
