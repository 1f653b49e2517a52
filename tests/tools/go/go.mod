module interedge.test/iegoclient

go 1.19
