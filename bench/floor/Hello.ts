// The floor for start-up figures: the cheapest program `bun build --compile` makes.
console.log("hello")
