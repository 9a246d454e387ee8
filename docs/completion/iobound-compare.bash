# bash completion for iobound-compare: its options, and the values of
# those that take a word from a list. Installed as
# share/bash-completion/completions/iobound-compare.
_iobound_compare() {
  local cur prev words
  cur=${COMP_WORDS[COMP_CWORD]}
  prev=${COMP_WORDS[COMP_CWORD-1]}
  local styles="sequential loop pool threads workers loops"
  case $prev in
    --styles)
      # A comma-separated list: complete the word after the last comma,
      # from the styles not in the list yet (it takes each style once).
      local done=${cur%"${cur##*,}"} left="" s
      for s in $styles; do
        case ",$done" in *",$s,"*) ;; *) left="$left $s" ;; esac
      done
      COMPREPLY=($(compgen -P "$done" -W "$left" -- "${cur##*,}"))
      return ;;
    --work)
      COMPREPLY=($(compgen -W "wait cpu mixed tcp pg http file" -- "$cur"))
      return ;;
    --format)
      COMPREPLY=($(compgen -W "table csv json" -- "$cur"))
      return ;;
    --progress)
      COMPREPLY=($(compgen -W "auto always never" -- "$cur"))
      return ;;
    --arrivals)
      COMPREPLY=($(compgen -W "even poisson" -- "$cur"))
      return ;;
    --svg|--trace)
      COMPREPLY=($(compgen -f -- "$cur"))
      return ;;
    --dir)
      COMPREPLY=($(compgen -d -- "$cur"))
      return ;;
    --target|--pg|--url|--cpu-us|--loops|--count|--duration|--limit|\
    --rate|--burst|--arrival-rate|--for|--seed|--retries|--backoff|--hedge|\
    --timeout|--pool-size)
      return ;; # a value of the user's
  esac
  COMPREPLY=($(compgen -W "--styles --work --target --pg --url --dir
    --cpu-us --loops --count --duration --limit --rate --burst
    --arrival-rate --for --arrivals --seed --retries
    --backoff --hedge --breaker --timeout
    --pool-size
    --format --progress --timeline --svg --trace -q --quiet --list-styles
    --list-kinds -h --help --version" -- "$cur"))
}
complete -F _iobound_compare iobound-compare
