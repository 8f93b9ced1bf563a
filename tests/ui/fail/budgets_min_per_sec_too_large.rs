stormguard::budgets! {
    payments { min_per_sec: 4294967296 }
}

fn main() {}
