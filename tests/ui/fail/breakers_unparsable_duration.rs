stormguard::breakers! {
    payments { consecutive_failures: 5, open_for: "30 seconds" }
}

fn main() {}
