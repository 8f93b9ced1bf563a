stormguard::budgets! {
    payments { capacity: 100, ratio: "10%" }
}

fn main() {}
