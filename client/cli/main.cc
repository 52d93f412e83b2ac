#include <iostream>

#include "client/cli/heraldctl.h"

int main(int argc, char** argv) { return herald::cli::Run(argc, argv, std::cout, std::cerr); }
