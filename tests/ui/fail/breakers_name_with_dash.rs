stormguard::breakers! {
    payments-eu { consecutive_failures: 5 }
}

fn main() {}
