module coronet-bench/go

go 1.19
