//! Claim-driven test plans: the structure a plan must have and the checks that keep it honest.
