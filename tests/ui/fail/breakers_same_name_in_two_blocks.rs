// Issue 12 item 4: the same breaker name declared in two blocks of one crate (two modules) was
// accepted, and link order picked the config: a compile error at the second name.
mod payments_team {
    stormguard::breakers! {
        payments { consecutive_failures: 5 }
    }
}

mod checkout_team {
    stormguard::breakers! {
        payments { consecutive_failures: 50 }
    }
}

stormguard::budgets! {
    ledger { ratio: 0.2 }
}

mod reports {
    stormguard::budgets! {
        ledger { ratio: 0.5 }
    }
}

fn main() {}
