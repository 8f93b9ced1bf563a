stormguard::budgets! {
    payments { capacity: -1 }
}

fn main() {}
