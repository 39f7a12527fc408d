//! x86_64 syscall names, for agents that write `syscall` as a name instead of the number.
//! Only the numbers the corpus uses (every record there has arch=c000003e).

const X86_64: &[(u32, &str)] = &[
    (1, "write"),
    (2, "open"),
    (13, "rt_sigaction"),
    (14, "rt_sigprocmask"),
    (23, "select"),
    (59, "execve"),
    (188, "setxattr"),
    (228, "clock_gettime"),
];

/// Whether `got` is the syscall `number` (as a number or its x86_64 name).
pub(crate) fn same_syscall(number: &str, got: &str) -> bool {
    got == number
        || number
            .parse::<u32>()
            .is_ok_and(|n| X86_64.iter().any(|(nr, name)| *nr == n && *name == got))
}
