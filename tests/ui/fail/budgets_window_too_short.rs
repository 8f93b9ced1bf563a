stormguard::budgets! {
    payments { ratio: 0.1, window: "1ms" }
    search { window: 5 }
}

fn main() {}
